// Presence: a user is online while at least one socket is connected; the
// co-members' user channels get `presence` when the overall status flips;
// GET /v1/rooms/{id}/presence lists every member.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { api, register, useServer } from '../lib/server.mjs';
import { connectAs, expectError, makeRoom, newClient, roomIs } from '../lib/chat.mjs';

const ctx = useServer();
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const presenceOf = (userId) => (p) => p?.userId === userId;

async function roomPresence(who, roomId) {
  const res = await api(ctx.base, 'GET', `/v1/rooms/${roomId}/presence`, who.token);
  assert.equal(res.status, 200, res.text);
  return res.json.presence;
}

describe('presence', () => {
  test('online with the first socket; still online while one of two remains; offline when the last disconnects', async () => {
    const bob = await newClient(ctx.base); // watches, joinUser'd
    const carol = await newClient(ctx.base); // not a co-member of alice
    const alice = await register(ctx.base); // no socket yet
    const room = await makeRoom(ctx.base, bob, 'watching', [alice]);

    let list = await roomPresence(bob, room.id);
    assert.deepEqual(list.map((p) => p.userId), [bob.user.id, alice.user.id], 'member order');
    assert.deepEqual(list[1], { userId: alice.user.id, online: false, lastSeenAt: null }, 'never connected');

    const a1 = await connectAs(ctx.base, alice, { label: 'alice 1' });
    const on = await bob.tape.waitFor('presence', presenceOf(alice.user.id), 3000, 'alice online');
    assert.deepEqual(on, { userId: alice.user.id, online: true, lastSeenAt: null });
    // chat.in is handled in order: bob's own (earlier) connection is recorded too.
    assert.deepEqual(await roomPresence(bob, room.id), [
      { userId: bob.user.id, online: true, lastSeenAt: null },
      { userId: alice.user.id, online: true, lastSeenAt: null },
    ]);
    const a2 = await connectAs(ctx.base, alice, { label: 'alice 2' });

    // One of two sockets goes: alice stays online.
    a1.socket.close();
    list = await roomPresence(bob, room.id);
    assert.equal(list.find(presenceOf(alice.user.id)).online, true);

    // The last one goes: offline, with lastSeenAt.
    a2.socket.close();
    const off = await bob.tape.waitFor('presence', (p) => p?.userId === alice.user.id && p.online === false, 3000, 'alice offline');
    assert.equal(off.online, false);
    assert.match(off.lastSeenAt ?? '', RFC3339);
    // Only two flips for alice: the first socket's close flipped nothing.
    assert.deepEqual(
      bob.tape.all('presence', presenceOf(alice.user.id)).map((p) => p.online),
      [true, false],
      bob.tape.describe(),
    );
    list = await roomPresence(bob, room.id);
    assert.deepEqual(list.find(presenceOf(alice.user.id)), { userId: alice.user.id, online: false, lastSeenAt: off.lastSeenAt });

    // Carol shares no room with alice: sentinel roomUpdated (a room made with carol) is the only thing she got.
    const sentinel = await makeRoom(ctx.base, bob, 'for carol', [carol]);
    await carol.tape.waitFor('roomUpdated', roomIs(sentinel.id), 3000, 'sentinel');
    assert.deepEqual(carol.tape.all('presence', presenceOf(alice.user.id)), [], carol.tape.describe());
  });

  test('coming back online: presence online:true again, lastSeenAt null while online', async () => {
    const bob = await newClient(ctx.base);
    const alice = await register(ctx.base);
    const room = await makeRoom(ctx.base, bob, 'again', [alice]);
    const a1 = await connectAs(ctx.base, alice);
    await bob.tape.waitFor('presence', (p) => p?.userId === alice.user.id && p.online, 3000, 'online');
    a1.socket.close();
    await bob.tape.waitFor('presence', (p) => p?.userId === alice.user.id && !p.online, 3000, 'offline');
    const mark = bob.tape.mark();
    await connectAs(ctx.base, alice);
    const back = await bob.tape.waitFor('presence', (p) => p?.userId === alice.user.id && p.online, 3000, 'online again', mark);
    assert.deepEqual(back, { userId: alice.user.id, online: true, lastSeenAt: null });
    assert.equal((await roomPresence(bob, room.id)).find(presenceOf(alice.user.id)).online, true);
  });

  test('GET …/presence: a non-member 403, an unknown room 404', async () => {
    const alice = await register(ctx.base);
    const eve = await register(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'private');
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${room.id}/presence`, eve.token), 403, 'forbidden', 'non-member');
    expectError(
      await api(ctx.base, 'GET', '/v1/rooms/01936c4e-8a5e-7b4e-9c1d-2f0e6a1b3c4d/presence', alice.token),
      404,
      'not_found',
      'unknown room',
    );
  });
});
