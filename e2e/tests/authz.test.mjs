// Authorization: every room route and socket command tried by a non-member,
// by a removed member, and by a member acting beyond their role or on
// someone else's things → 403 / {ok:false, error:{code:"forbidden"}}, with
// nothing changed (state read back, and no event reached the members: a
// sentinel message is the only thing they get). Identity always comes from
// the token, never from a payload.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { api, emitWithAck, useServer } from '../lib/server.mjs';
import {
  ackOk,
  allRooms,
  cid,
  connectAs,
  history,
  joinRoom,
  makeRoom,
  newClient,
  reactionPath,
  roomView,
  say,
} from '../lib/chat.mjs';

const ctx = useServer();

/** Everything a member can read about the room, as `viewers` see it. */
async function snapshot(roomId, viewers) {
  const out = {};
  for (const v of viewers) {
    out[v.user.username] = {
      view: await roomView(ctx.base, v, roomId),
      history: await history(ctx.base, v, roomId),
      presence: (await api(ctx.base, 'GET', `/v1/rooms/${roomId}/presence`, v.token)).json,
    };
  }
  return out;
}

/** Every room route, as `actor`, against `roomId` and its messages. */
async function everyRoute(actor, roomId, { other, message, ownMessage }) {
  const r = `/v1/rooms/${roomId}`;
  const me = actor.user.id;
  const tries = [
    ['GET room', 'GET', r],
    ['PATCH room (rename)', 'PATCH', r, { name: 'taken over' }],
    ['POST members (add self)', 'POST', `${r}/members`, { userIds: [me] }],
    ['DELETE members/{other} (remove)', 'DELETE', `${r}/members/${other.user.id}`],
    ['DELETE members/{self} (leave)', 'DELETE', `${r}/members/${me}`],
    ['POST leave', 'POST', `${r}/leave`],
    ['PUT role of other', 'PUT', `${r}/members/${other.user.id}/role`, { role: 'admin' }],
    ['PUT role of self', 'PUT', `${r}/members/${me}/role`, { role: 'admin' }],
    ['POST message', 'POST', `${r}/messages`, { clientMsgId: cid(), body: 'let me in' }],
    ['GET messages', 'GET', `${r}/messages`],
    ['GET messages beforeSeq', 'GET', `${r}/messages?beforeSeq=100`],
    ['PATCH message (edit)', 'PATCH', `${r}/messages/${message.id}`, { body: 'edited by intruder' }],
    ['DELETE message', 'DELETE', `${r}/messages/${message.id}`],
    ['PUT reaction', 'PUT', reactionPath(roomId, message.id, '😈')],
    ['DELETE reaction', 'DELETE', reactionPath(roomId, message.id, '👍')],
    ['POST read', 'POST', `${r}/read`, { seq: 1 }],
    ['GET presence', 'GET', `${r}/presence`],
  ];
  if (ownMessage) {
    tries.push(['PATCH own earlier message', 'PATCH', `${r}/messages/${ownMessage.id}`, { body: 'rewritten' }]);
    tries.push(['DELETE own earlier message', 'DELETE', `${r}/messages/${ownMessage.id}`]);
    tries.push(['PUT reaction on own earlier message', 'PUT', reactionPath(roomId, ownMessage.id, '👍')]);
  }
  const failures = [];
  for (const [what, method, path, body] of tries) {
    const res = await api(ctx.base, method, path, actor.token, body);
    if (res.status !== 403 || res.json?.error?.code !== 'forbidden' || typeof res.json?.error?.message !== 'string') {
      failures.push(`${what} (${method} ${path}): ${res.status} ${res.text}`);
    }
  }
  return failures;
}

/** Every socket command, as `actor`'s socket, against `roomId`. */
async function everyCommand(socket, roomId) {
  const tries = [
    ['joinRoom', { roomId }],
    ['sendMessage', { roomId, clientMsgId: cid(), body: 'over the socket' }],
    ['markMessageRead', { roomId, seq: 1 }],
    ['typing', { roomId, typing: true }],
  ];
  const failures = [];
  for (const [event, payload] of tries) {
    const ack = await emitWithAck(socket, event, payload);
    if (ack?.ok !== false || ack?.error?.code !== 'forbidden') failures.push(`${event}: ${JSON.stringify(ack)}`);
  }
  return failures;
}

describe('outsiders', () => {
  let alice; // owner
  let bob; // member
  let carol; // member, removed in before()
  let eve; // never a member
  let room;
  let side; // alice + bob, for sentinels
  let m1; // alice's
  let m2; // bob's, with alice's 👍
  let m3; // carol's, sent over the socket before her removal

  before(async () => {
    alice = await newClient(ctx.base);
    bob = await newClient(ctx.base);
    carol = await newClient(ctx.base);
    eve = await newClient(ctx.base);
    room = await makeRoom(ctx.base, alice, 'guarded', [bob, carol]);
    side = await makeRoom(ctx.base, alice, 'side', [bob]);
    for (const who of [alice, bob, carol]) await joinRoom(who.socket, room.id);
    await joinRoom(bob.socket, side.id);
    m1 = await say(ctx.base, alice, room.id, 'from alice');
    m2 = await say(ctx.base, bob, room.id, 'from bob');
    assert.equal((await api(ctx.base, 'PUT', reactionPath(room.id, m2.id, '👍'), alice.token)).status, 200);

    // Carol acts over the socket (so the gateway's membership cache knows her), then is removed.
    ackOk(await emitWithAck(carol.socket, 'sendMessage', { roomId: room.id, clientMsgId: 'carol-1', body: 'from carol' }), 'carol sends');
    m3 = await carol.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'carol-1', 3000, 'carol\'s message');
    ackOk(await emitWithAck(carol.socket, 'markMessageRead', { roomId: room.id, seq: m3.seq }), 'carol reads');
    ackOk(await emitWithAck(carol.socket, 'typing', { roomId: room.id, typing: false }), 'carol typing check');
    const removed = await api(ctx.base, 'DELETE', `/v1/rooms/${room.id}/members/${carol.user.id}`, alice.token);
    assert.equal(removed.status, 200, removed.text);
    await carol.tape.waitFor('roomRemoved', (p) => p?.roomId === room.id, 3000, 'carol removed');
    await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && !r.members.includes(carol.user.id), 3000, 'bob told');
  });

  for (const who of ['eve (never a member)', 'carol (removed member)']) {
    test(`${who}: every route is 403 forbidden, every socket command forbidden, nothing changed, nothing delivered`, async () => {
      const actor = who.startsWith('eve') ? eve : carol;
      const before = await snapshot(room.id, [alice, bob]);
      const marks = { alice: alice.tape.mark(), bob: bob.tape.mark() };

      const failures = [
        ...(await everyRoute(actor, room.id, { other: bob, message: m2, ownMessage: actor === carol ? m3 : null })),
        ...(await everyCommand(actor.socket, room.id)),
      ];
      // A fresh socket (no cached answers at all) is refused the same way.
      const fresh = await connectAs(ctx.base, actor, { joinUser: false });
      failures.push(...(await everyCommand(fresh.socket, room.id)).map((f) => `fresh socket ${f}`));
      fresh.socket.close();
      assert.deepEqual(failures, [], `refusals expected (403 / forbidden):\n  ${failures.join('\n  ')}`);
      assert.equal(actor.socket.connected, true, 'refusals keep the socket');

      // Nothing changed.
      assert.deepEqual(await snapshot(room.id, [alice, bob]), before);
      assert.ok(!(await allRooms(ctx.base, actor)).some((r) => r.id === room.id), 'room not listed for the outsider');

      // Nothing delivered: the sentinel is the first room event since the mark.
      const sentinel = await say(ctx.base, alice, room.id, `sentinel after ${who}`);
      for (const [name, member] of [['alice', alice], ['bob', bob]]) {
        // The sentinel's roomUpdated is queued after its receiveMessage: wait for the later one.
        await member.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === sentinel.seq, 3000, 'sentinel', marks[name]);
        const events = member.tape
          .since(marks[name])
          .map((e) => `${e.event}:${e.payload?.roomId ?? e.payload?.id}:${e.payload?.seq ?? e.payload?.lastSeq ?? ''}`);
        const expected = [`receiveMessage:${room.id}:${sentinel.seq}`, `roomUpdated:${room.id}:${sentinel.seq}`];
        assert.deepEqual([...events].sort(), [...expected].sort(), `${name} got:\n  ${member.tape.describe()}`);
      }
      // And the outsider got nothing from the room.
      const removedAt = actor.tape.entries.findIndex((e) => e.event === 'roomRemoved');
      const leaked = actor.tape.entries
        .slice(removedAt + 1) // eve: all of them (-1 + 1); carol: after her roomRemoved
        .filter((e) => e.payload?.roomId === room.id || e.payload?.id === room.id);
      assert.deepEqual(leaked, [], `${who} received room events:\n  ${actor.tape.describe()}`);
    });
  }

  test('the removed member\'s presence no longer reaches the room\'s members (not co-members any more)', async () => {
    // Dave shares a room with carol only: his presence event is the signal that carol's flip was handled.
    const dave = await newClient(ctx.base);
    await makeRoom(ctx.base, dave, 'dave and carol', [carol]);
    const mark = bob.tape.mark();
    carol.socket.close(); // her last socket: she goes offline
    await dave.tape.waitFor('presence', (p) => p?.userId === carol.user.id && p.online === false, 3000, 'carol offline at dave');
    // Sentinel on bob's socket, queued after carol's presence events.
    const s = await say(ctx.base, alice, side.id, 'sentinel');
    await bob.tape.waitFor('receiveMessage', (m) => m?.id === s.id, 3000, 'sentinel', mark);
    assert.deepEqual(bob.tape.since(mark).filter((e) => e.event === 'presence'), [], bob.tape.describe());
  });
});

describe('members beyond their rights', () => {
  test('a plain member cannot edit or delete others\' messages, manage the room, or remove others\' reactions; nothing changes', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'rules', [bob, carol]);
    await joinRoom(carol.socket, room.id);
    const m1 = await say(ctx.base, alice, room.id, 'alice');
    const m2 = await say(ctx.base, carol, room.id, 'carol');
    assert.equal((await api(ctx.base, 'PUT', reactionPath(room.id, m1.id, '👍'), carol.token)).status, 200);
    const before = await snapshot(room.id, [alice, carol]);
    const mark = carol.tape.mark();

    const r = `/v1/rooms/${room.id}`;
    const refusals = [
      ['edit the owner\'s message', 'PATCH', `${r}/messages/${m1.id}`, { body: 'x' }],
      ['edit another member\'s message', 'PATCH', `${r}/messages/${m2.id}`, { body: 'x' }],
      ['delete the owner\'s message', 'DELETE', `${r}/messages/${m1.id}`],
      ['delete another member\'s message', 'DELETE', `${r}/messages/${m2.id}`],
      ['rename', 'PATCH', r, { name: 'bob rules' }],
      ['add', 'POST', `${r}/members`, { userIds: [alice.user.id] }],
      ['remove a member', 'DELETE', `${r}/members/${carol.user.id}`],
      ['remove the owner', 'DELETE', `${r}/members/${alice.user.id}`],
      ['make self admin', 'PUT', `${r}/members/${bob.user.id}/role`, { role: 'admin' }],
    ];
    const failures = [];
    for (const [what, method, path, body] of refusals) {
      const res = await api(ctx.base, method, path, bob.token, body);
      if (res.status !== 403 || res.json?.error?.code !== 'forbidden') failures.push(`${what}: ${res.status} ${res.text}`);
    }
    assert.deepEqual(failures, [], failures.join('\n'));

    // Reactions are per user: bob "removing" the 👍 removes nothing of carol's.
    const un = await api(ctx.base, 'DELETE', reactionPath(room.id, m1.id, '👍'), bob.token);
    assert.equal(un.status, 200, un.text);
    assert.deepEqual(un.json, { changed: false });

    assert.deepEqual(await snapshot(room.id, [alice, carol]), before);
    const sentinel = await say(ctx.base, alice, room.id, 'sentinel');
    await carol.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === sentinel.seq, 3000, 'sentinel', mark);
    assert.deepEqual(
      carol.tape.since(mark).map((e) => e.event).sort(),
      ['receiveMessage', 'roomUpdated'],
      carol.tape.describe(),
    );
  });
});

describe('identity is the token\'s', () => {
  test('userId / senderId in socket payloads are ignored: sendMessage, markMessageRead and joinUser act as the socket\'s user', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'who am i', [bob]);
    await joinRoom(alice.socket, room.id);
    await say(ctx.base, alice, room.id, 'one');

    // markMessageRead naming alice moves bob's marker, not alice's.
    const aliceBefore = await roomView(ctx.base, alice, room.id);
    ackOk(await emitWithAck(bob.socket, 'markMessageRead', { roomId: room.id, seq: 1, userId: alice.user.id }), 'markMessageRead');
    const receipt = await alice.tape.waitFor('messageReadUpdate', (u) => u?.seq === 1, 3000, 'receipt');
    assert.equal(receipt.userId, bob.user.id);
    assert.deepEqual(await roomView(ctx.base, alice, room.id), aliceBefore);

    ackOk(
      await emitWithAck(bob.socket, 'sendMessage', {
        roomId: room.id,
        clientMsgId: 'spoof',
        body: 'am I alice?',
        senderId: alice.user.id,
        userId: alice.user.id,
      }),
      'sendMessage with a foreign senderId',
    );
    const m = await alice.tape.waitFor('receiveMessage', (x) => x?.clientMsgId === 'spoof', 3000, 'spoofed message');
    assert.equal(m.senderId, bob.user.id);

    // joinUser naming alice joins the caller's own channel only.
    const eve = await newClient(ctx.base, { joinUser: false });
    ackOk(await emitWithAck(eve.socket, 'joinUser', { userId: alice.user.id }), 'joinUser with a foreign userId');
    const forAlice = await makeRoom(ctx.base, bob, 'alice only', [alice]);
    await alice.tape.waitFor('roomUpdated', (r) => r?.id === forAlice.id, 3000, 'alice told');
    const forEve = await makeRoom(ctx.base, bob, 'eve', [eve]);
    await eve.tape.waitFor('roomUpdated', (r) => r?.id === forEve.id, 3000, 'eve told (sentinel)');
    assert.deepEqual(eve.tape.all('roomUpdated').map((r) => r.id), [forEve.id], eve.tape.describe());
  });
});
