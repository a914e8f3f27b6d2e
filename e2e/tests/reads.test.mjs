// Read markers and unread counts: roomUpdated.unreadCount on user channels,
// GET /v1/rooms counts, POST …/read and markMessageRead over the socket,
// messageReadUpdate seen by the others (read receipts), monotone markers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { api, emitWithAck, live, useServer } from '../lib/server.mjs';
import {
  ackError,
  ackOk,
  allRooms,
  call,
  expectError,
  joinRoom,
  makeRoom,
  newClient,
  roomView,
  say,
} from '../lib/chat.mjs';

const ctx = useServer();

const markRead = (who, roomId, seq) => api(ctx.base, 'POST', `/v1/rooms/${roomId}/read`, who.token, { seq });
const markOverSocket = (who, roomId, seq) => emitWithAck(who.socket, 'markMessageRead', { roomId, seq });

/** `who`'s entry for `roomId` in GET /v1/rooms. */
async function listed(who, roomId) {
  const r = (await allRooms(ctx.base, who)).find((x) => x.id === roomId);
  assert.ok(r, `room ${roomId} listed for ${who.user.username}`);
  return r;
}

/** Wait for `who`'s roomUpdated for `roomId` matching `pred`. */
const viewWhere = (who, roomId, pred, what) =>
  who.tape.waitFor('roomUpdated', (r) => r?.id === roomId && pred(r), 3000, `${who.user.username}: ${what}`);

describe('unread counts', () => {
  test('across three users: roomUpdated.unreadCount on each user channel and the counts of GET /v1/rooms agree', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'three', [bob, carol]);

    for (let i = 1; i <= 3; i++) await say(ctx.base, alice, room.id, `from alice ${i}`);
    // Every member gets a roomUpdated per message, with their own count.
    for (let seq = 1; seq <= 3; seq++) {
      const a = await viewWhere(alice, room.id, (r) => r.lastSeq === seq, `seq ${seq}`);
      assert.equal(a.unreadCount, 0, 'the sender reads their own messages');
      assert.equal(a.readSeq, seq);
      for (const who of [bob, carol]) {
        const v = await viewWhere(who, room.id, (r) => r.lastSeq === seq, `seq ${seq}`);
        assert.equal(v.unreadCount, seq, `${who.user.username} unread at seq ${seq}`);
        assert.equal(v.readSeq, 0);
        assert.equal(v.lastMessage?.seq, seq);
      }
    }
    assert.equal((await listed(alice, room.id)).unreadCount, 0);
    assert.equal((await listed(bob, room.id)).unreadCount, 3);
    assert.equal((await listed(carol, room.id)).unreadCount, 3);

    // Bob reads up to 2 over REST.
    const res = await markRead(bob, room.id, 2);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { readSeq: 2, unreadCount: 1 });
    const vb = await viewWhere(bob, room.id, (r) => r.readSeq === 2, 'after reading to 2');
    assert.equal(vb.unreadCount, 1);
    // Carol reads everything over the socket.
    ackOk(await markOverSocket(carol, room.id, 3), 'markMessageRead');
    const vc = await viewWhere(carol, room.id, (r) => r.readSeq === 3, 'after reading to 3');
    assert.equal(vc.unreadCount, 0);

    // Bob posts: his marker jumps to his message; the others' counts grow.
    const m4 = await say(ctx.base, bob, room.id, 'from bob');
    assert.equal(m4.seq, 4);
    const expect = [
      [alice, 3, 1],
      [bob, 4, 0],
      [carol, 3, 1],
    ];
    for (const [who, readSeq, unread] of expect) {
      const v = await viewWhere(who, room.id, (r) => r.lastSeq === 4, 'seq 4');
      assert.equal(v.readSeq, readSeq, `${who.user.username} readSeq`);
      assert.equal(v.unreadCount, unread, `${who.user.username} unreadCount`);
      const l = await listed(who, room.id);
      assert.equal(l.readSeq, readSeq, `${who.user.username} listed readSeq`);
      assert.equal(l.unreadCount, unread, `${who.user.username} listed unreadCount`);
      assert.equal(l.lastMessage?.id, m4.id);
    }
    assert.deepEqual(carol.tape.all('roomUpdated', (r) => r?.id === room.id && r.readSeq === 2), [], 'bob\'s read does not reach carol');
  });
});

describe('read receipts', () => {
  test('markMessageRead over the socket: ACK {ok:true}; the sender sees messageReadUpdate; the reader gets roomUpdated', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'receipts', [bob]);
    await joinRoom(alice.socket, room.id);
    await say(ctx.base, alice, room.id, 'one');
    const two = await say(ctx.base, alice, room.id, 'two');

    ackOk(await markOverSocket(bob, room.id, two.seq), 'markMessageRead');
    const receipt = await alice.tape.waitFor('messageReadUpdate', (u) => u?.userId === bob.user.id, 3000, 'receipt');
    assert.deepEqual(live(receipt), { roomId: room.id, userId: bob.user.id, seq: 2 });
    const v = await viewWhere(bob, room.id, (r) => r.readSeq === 2, 'reader view');
    assert.equal(v.unreadCount, 0);
    assert.equal((await roomView(ctx.base, bob, room.id)).readSeq, 2);
  });

  test('markers only move forward: an older or equal seq changes and sends nothing; a seq past the end is capped at lastSeq', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'monotone', [bob]);
    await joinRoom(alice.socket, room.id);
    for (let i = 1; i <= 3; i++) await say(ctx.base, alice, room.id, `m${i}`);

    let res = await markRead(bob, room.id, 2);
    assert.deepEqual(res.json, { readSeq: 2, unreadCount: 1 });
    await alice.tape.waitFor('messageReadUpdate', (u) => u?.userId === bob.user.id && u.seq === 2, 3000, 'receipt 2');

    const mark = alice.tape.mark();
    res = await markRead(bob, room.id, 1);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { readSeq: 2, unreadCount: 1 }, 'backwards: unchanged');
    res = await markRead(bob, room.id, 2);
    assert.deepEqual(res.json, { readSeq: 2, unreadCount: 1 }, 'same: unchanged');
    ackOk(await markOverSocket(bob, room.id, 0), 'socket, backwards');
    ackOk(await markOverSocket(bob, room.id, 1), 'socket, backwards');

    // Past the end: capped at lastSeq (3).
    res = await markRead(bob, room.id, 99);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { readSeq: 3, unreadCount: 0 });
    const capped = await alice.tape.waitFor('messageReadUpdate', (u) => u?.userId === bob.user.id && u.seq === 3, 3000, 'receipt 3', mark);
    assert.deepEqual(live(capped), { roomId: room.id, userId: bob.user.id, seq: 3 });
    // Everything between the mark and the capped receipt: no other receipt.
    assert.deepEqual(
      alice.tape.since(mark).filter((e) => e.event === 'messageReadUpdate').map((e) => e.payload.seq),
      [3],
      alice.tape.describe(),
    );

    // At the end already: nothing more (sentinel: a new message).
    const mark2 = alice.tape.mark();
    ackOk(await markOverSocket(bob, room.id, 50), 'socket, past the end again');
    const sentinel = await say(ctx.base, alice, room.id, 'sentinel');
    await alice.tape.waitFor('receiveMessage', (x) => x?.id === sentinel.id, 3000, 'sentinel', mark2);
    assert.deepEqual(alice.tape.since(mark2).filter((e) => e.event === 'messageReadUpdate'), [], alice.tape.describe());
    assert.equal((await roomView(ctx.base, bob, room.id)).readSeq, 3);
  });

  test('seq must be a number >= 0: 400 over REST, bad_request over the socket', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'bad reads');
    for (const [what, body] of [
      ['negative', { seq: -1 }],
      ['not a number', { seq: 'x' }],
      ['missing', {}],
    ]) {
      expectError(await api(ctx.base, 'POST', `/v1/rooms/${room.id}/read`, alice.token, body), 400, 'bad_request', what);
    }
    for (const [what, payload] of [
      ['negative', { roomId: room.id, seq: -1 }],
      ['not a number', { roomId: room.id, seq: 'x' }],
      ['no seq', { roomId: room.id }],
      ['no roomId', { seq: 1 }],
      ['roomId not an id', { roomId: 'x', seq: 1 }],
    ]) {
      ackError(await emitWithAck(alice.socket, 'markMessageRead', payload), 'bad_request', what);
    }
    await call(ctx.base, 'POST', `/v1/rooms/${room.id}/read`, alice.token, { seq: 0 }, 200, 'seq 0 is fine');
  });

  test('a member added later starts with nothing unread', async () => {
    const alice = await newClient(ctx.base);
    const dave = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'late');
    await say(ctx.base, alice, room.id, 'old news');
    await call(ctx.base, 'POST', `/v1/rooms/${room.id}/members`, alice.token, { userIds: [dave.user.id] }, 200);
    const v = await viewWhere(dave, room.id, () => true, 'added');
    assert.equal(v.readSeq, 1);
    assert.equal(v.unreadCount, 0);
    assert.equal((await listed(dave, room.id)).unreadCount, 0);
  });
});
