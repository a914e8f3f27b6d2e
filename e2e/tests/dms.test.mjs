// Direct messages: one room per pair, opened from either side, messages both
// ways, and a membership that never changes.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { api, emitWithAck, live, useServer } from '../lib/server.mjs';
import {
  ackOk,
  cid,
  expectError,
  history,
  joinRoom,
  newClient,
  roomIs,
  roomView,
  sorted,
} from '../lib/chat.mjs';

const ctx = useServer();

const openDm = (me, peer) => api(ctx.base, 'POST', '/v1/dms', me.token, { userId: peer.user.id });

describe('opening a DM', () => {
  test('first call 201 {room} (kind dm, both members, both "member", named after both users); then 200 with the same room from either side', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);

    const first = await openDm(alice, bob);
    assert.equal(first.status, 201, first.text);
    const room = first.json.room;
    assert.equal(room.kind, 'dm');
    assert.deepEqual(sorted(room.members), sorted([alice.user.id, bob.user.id]));
    assert.deepEqual(room.roles, { [alice.user.id]: 'member', [bob.user.id]: 'member' });
    assert.deepEqual(sorted(room.name.split(', ')), sorted([alice.user.username, bob.user.username]), `name ${room.name}`);
    assert.equal(room.lastSeq, 0);
    assert.equal(room.unreadCount, 0);
    assert.equal(room.lastMessage, null);

    for (const who of [alice, bob]) {
      await who.tape.waitFor('roomUpdated', roomIs(room.id), 3000, `${who.user.username} told of the DM`);
    }

    const again = await openDm(alice, bob);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.room.id, room.id);
    const reverse = await openDm(bob, alice);
    assert.equal(reverse.status, 200, reverse.text);
    assert.equal(reverse.json.room.id, room.id);
    assert.equal(reverse.json.room.kind, 'dm');

    // Reopening sends no new roomUpdated: a later message's roomUpdated is the next one.
    const markA = alice.tape.mark();
    const sent = await api(ctx.base, 'POST', `/v1/rooms/${room.id}/messages`, bob.token, { clientMsgId: cid(), body: 'hey' });
    assert.equal(sent.status, 201, sent.text);
    await alice.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === 1, 3000, 'message roomUpdated', markA);
    assert.equal(alice.tape.since(markA).filter((e) => e.event === 'roomUpdated').length, 1, alice.tape.describe());
  });

  test('both users opening the DM at once get one room (one 201, one 200)', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    const bob = await newClient(ctx.base, { joinUser: false });
    const [a, b] = await Promise.all([openDm(alice, bob), openDm(bob, alice)]);
    assert.deepEqual([a.status, b.status].sort(), [200, 201], `${a.status} ${a.text} / ${b.status} ${b.text}`);
    assert.equal(a.json.room.id, b.json.room.id);
    const list = await api(ctx.base, 'GET', '/v1/rooms', alice.token);
    assert.equal(list.json.rooms.filter((r) => r.kind === 'dm').length, 1, list.text);
  });

  test('a DM with yourself or a malformed id is 400; with an unknown user 404', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    expectError(await openDm(alice, alice), 400, 'bad_request', 'DM with self');
    expectError(await api(ctx.base, 'POST', '/v1/dms', alice.token, { userId: randomUUID() }), 404, 'not_found', 'DM with unknown user');
    expectError(await api(ctx.base, 'POST', '/v1/dms', alice.token, { userId: 'nope' }), 400, 'bad_request', 'malformed userId');
    expectError(await api(ctx.base, 'POST', '/v1/dms', alice.token, {}), 400, 'bad_request', 'no userId');
    const list = await api(ctx.base, 'GET', '/v1/rooms', alice.token);
    assert.deepEqual(list.json.rooms, []);
  });
});

describe('talking in a DM', () => {
  test('messages flow both ways in the same room, over REST and sendMessage', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = (await openDm(alice, bob)).json.room;
    const fromBobSide = (await openDm(bob, alice)).json.room;
    assert.equal(fromBobSide.id, room.id);
    await joinRoom(alice.socket, room.id);
    await joinRoom(bob.socket, room.id);

    // alice → bob over the socket
    const a = ackOk(await emitWithAck(alice.socket, 'sendMessage', { roomId: room.id, clientMsgId: 'dm-a1', body: 'hi bob' }), 'sendMessage');
    assert.equal(a.clientMsgId, 'dm-a1');
    const atBob = await bob.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'dm-a1', 3000, 'alice→bob');
    assert.equal(atBob.senderId, alice.user.id);
    assert.equal(atBob.roomId, room.id);
    await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'dm-a1', 3000, 'alice→alice');

    // bob → alice over REST
    const res = await api(ctx.base, 'POST', `/v1/rooms/${fromBobSide.id}/messages`, bob.token, { clientMsgId: 'dm-b1', body: 'hi alice' });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(
      live(await alice.tape.waitFor('receiveMessage', (m) => m?.id === res.json.message.id, 3000, 'bob→alice')),
      res.json.message,
    );

    const h = await history(ctx.base, bob, room.id);
    assert.deepEqual(h.map((m) => [m.seq, m.senderId, m.body]), [
      [1, alice.user.id, 'hi bob'],
      [2, bob.user.id, 'hi alice'],
    ]);
    // Unread: each sees the other's latest message as unread.
    const va = await alice.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === 2, 3000, 'alice view at seq 2');
    assert.equal(va.unreadCount, 1);
    assert.equal(va.readSeq, 1);
    const vb = await roomView(ctx.base, bob, room.id);
    assert.equal(vb.unreadCount, 0);
    assert.equal(vb.readSeq, 2);
  });

  test('a third user cannot read, post to or join a DM', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const eve = await newClient(ctx.base);
    const room = (await openDm(alice, bob)).json.room;
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${room.id}`, eve.token), 403, 'forbidden', 'GET DM');
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages`, eve.token), 403, 'forbidden', 'read DM');
    expectError(
      await api(ctx.base, 'POST', `/v1/rooms/${room.id}/messages`, eve.token, { clientMsgId: cid(), body: 'psst' }),
      403,
      'forbidden',
      'post to DM',
    );
    const ack = await emitWithAck(eve.socket, 'joinRoom', { roomId: room.id });
    assert.equal(ack?.error?.code, 'forbidden', JSON.stringify(ack));
    assert.deepEqual(await history(ctx.base, alice, room.id), []);
  });
});

describe('a DM\'s membership, name and roles never change', () => {
  test('rename is 400; adding, removing, leaving and role changes are refused; nothing changes', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const room = (await openDm(alice, bob)).json.room;
    const before = await roomView(ctx.base, alice, room.id);

    expectError(await api(ctx.base, 'PATCH', `/v1/rooms/${room.id}`, alice.token, { name: 'ours' }), 400, 'bad_request', 'rename a DM');

    const refusals = [
      ['add a member', await api(ctx.base, 'POST', `/v1/rooms/${room.id}/members`, alice.token, { userIds: [carol.user.id] })],
      ['remove the peer', await api(ctx.base, 'DELETE', `/v1/rooms/${room.id}/members/${bob.user.id}`, alice.token)],
      ['leave (POST leave)', await api(ctx.base, 'POST', `/v1/rooms/${room.id}/leave`, bob.token)],
      ['leave (DELETE self)', await api(ctx.base, 'DELETE', `/v1/rooms/${room.id}/members/${bob.user.id}`, bob.token)],
      ['make the peer admin', await api(ctx.base, 'PUT', `/v1/rooms/${room.id}/members/${bob.user.id}/role`, alice.token, { role: 'admin' })],
    ];
    for (const [what, res] of refusals) {
      assert.ok([400, 403].includes(res.status), `${what}: expected 400 or 403, got ${res.status} ${res.text}`);
      assert.equal(res.json?.error?.code, res.status === 400 ? 'bad_request' : 'forbidden', `${what}: ${res.text}`);
    }
    assert.deepEqual(await roomView(ctx.base, alice, room.id), before);
    assert.deepEqual(bob.tape.all('roomRemoved'), []);
  });
});
