// Typing indicators: relayed to the room's other sockets (never the typer's),
// refreshes within 1 s not relayed again, expiry 5 s after the last
// typing:true (the server relays typing:false by itself), disconnect ends
// typing, rate limit 10/s per socket.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { emitWithAck, useServer } from '../lib/server.mjs';
import { ackError, ackOk, connectAs, joinRoom, makeRoom, newClient, nextEvent } from '../lib/chat.mjs';

const ctx = useServer();

const TYPING_TIMEOUT_MS = 5000; // chat.typing_timeout_ms default

const typing = (socket, roomId, on) => emitWithAck(socket, 'typing', { roomId, typing: on });
const typingOf = (roomId, userId, on) => (p) => p?.roomId === roomId && p.userId === userId && p.typing === on;

/** alice (two sockets), bob and carol in one room, every socket joined. */
async function setup(name) {
  const alice = await newClient(ctx.base);
  const alice2 = await connectAs(ctx.base, alice, { label: 'alice second socket' });
  const bob = await newClient(ctx.base);
  const carol = await newClient(ctx.base);
  const room = await makeRoom(ctx.base, alice, name, [bob, carol]);
  for (const s of [alice.socket, alice2.socket, bob.socket, carol.socket]) await joinRoom(s, room.id);
  return { alice, alice2, bob, carol, room };
}

describe('typing relay', () => {
  test('typing:true reaches the others at once, not the typer\'s sockets; typing:false by itself ~5 s later without a refresh', async () => {
    const { alice, alice2, bob, carol, room } = await setup('typing');

    const t0 = Date.now();
    ackOk(await typing(alice.socket, room.id, true), 'typing true');
    const onBob = await bob.tape.waitForEntry('typing', typingOf(room.id, alice.user.id, true), 2000, 'typing:true');
    assert.deepEqual(onBob.payload, { roomId: room.id, userId: alice.user.id, typing: true });
    await carol.tape.waitFor('typing', typingOf(room.id, alice.user.id, true), 2000, 'typing:true at carol');

    // The expiry: typing:false arrives with no further action, ~5 s after the typing:true.
    const off = await bob.tape.waitForEntry(
      'typing',
      typingOf(room.id, alice.user.id, false),
      TYPING_TIMEOUT_MS + 3000,
      'typing:false from the expiry',
    );
    const elapsed = off.at - t0;
    assert.ok(elapsed >= TYPING_TIMEOUT_MS - 500, `typing:false came after ${elapsed} ms, before the 5 s timeout`);
    assert.ok(elapsed <= TYPING_TIMEOUT_MS + 2500, `typing:false came after ${elapsed} ms`);
    assert.deepEqual(off.payload, { roomId: room.id, userId: alice.user.id, typing: false });

    // Sentinel for alice's sockets: bob types; alice sees bob, and never herself.
    ackOk(await typing(bob.socket, room.id, true), 'bob types');
    for (const t of [alice.tape, alice2.tape]) {
      await t.waitFor('typing', typingOf(room.id, bob.user.id, true), 2000, 'bob typing');
      assert.deepEqual(t.all('typing', (p) => p?.userId === alice.user.id), [], `${t.label} saw its own typing:\n  ${t.describe()}`);
    }
    assert.equal(bob.tape.all('typing', (p) => p?.userId === alice.user.id).length, 2, bob.tape.describe());
    ackOk(await typing(bob.socket, room.id, false), 'bob stops');
    await alice.tape.waitFor('typing', typingOf(room.id, bob.user.id, false), 2000, 'bob stopped');
  });

  test('refreshes within 1 s are accepted but not relayed; typing:false relays once; typing:false when not typing relays nothing', async () => {
    const { alice, bob, carol, room } = await setup('refresh');

    ackOk(await typing(alice.socket, room.id, true), 'start');
    ackOk(await typing(alice.socket, room.id, true), 'refresh 1');
    ackOk(await typing(alice.socket, room.id, true), 'refresh 2');
    ackOk(await typing(alice.socket, room.id, false), 'stop');
    ackOk(await typing(alice.socket, room.id, false), 'stop again (not typing)');
    // Sentinel: carol types after all of that.
    ackOk(await typing(carol.socket, room.id, true), 'carol types');
    await bob.tape.waitFor('typing', typingOf(room.id, carol.user.id, true), 2000, 'carol typing (sentinel)');

    assert.deepEqual(
      bob.tape.all('typing', (p) => p?.userId === alice.user.id).map((p) => p.typing),
      [true, false],
      bob.tape.describe(),
    );
    ackOk(await typing(carol.socket, room.id, false), 'carol stops');
  });

  test('a disconnect ends the socket\'s typing: typing:false is relayed well before the timeout', async () => {
    const { alice, bob, room } = await setup('disconnect');
    const dave = await connectAs(ctx.base, alice, { joinUser: false, label: 'alice third socket' });
    await joinRoom(dave.socket, room.id);
    ackOk(await typing(dave.socket, room.id, true), 'typing');
    await bob.tape.waitFor('typing', typingOf(room.id, alice.user.id, true), 2000, 'typing:true');
    const t0 = Date.now();
    const off = nextEvent(bob.socket, 'typing', typingOf(room.id, alice.user.id, false), 3000, 'typing:false after disconnect');
    dave.socket.close();
    await off;
    assert.ok(Date.now() - t0 < TYPING_TIMEOUT_MS - 1000, `typing:false took ${Date.now() - t0} ms`);
    assert.equal(alice.socket.connected, true);
  });
});

describe('typing rate limit', () => {
  test('more than 10 typing events in a second on one socket: rate_limited, and nothing relayed for those', async () => {
    const { alice, alice2, bob, carol, room } = await setup('limits');

    // Spend the bucket with typing:false (not typing, so none of them relays).
    const burst = await Promise.all(Array.from({ length: 25 }, () => typing(alice.socket, room.id, false)));
    const ok = burst.filter((a) => a?.ok === true).length;
    const limited = burst.filter((a) => a?.ok === false && a.error?.code === 'rate_limited');
    assert.ok(limited.length >= 1, `no rate_limited among 25: ${JSON.stringify(burst)}`);
    assert.equal(ok + limited.length, 25, JSON.stringify(burst));
    assert.ok(ok <= 12, `${ok} of 25 accepted at once; the limit is 10 per second`);
    for (const a of limited) assert.equal(typeof a.error.message, 'string');

    // Still limited right now: typing:true is refused and not relayed.
    const refused = await typing(alice.socket, room.id, true);
    ackError(refused, 'rate_limited', 'typing:true over the limit');

    // The limit is per socket: alice's other socket is fine (and relays).
    ackOk(await typing(alice2.socket, room.id, true), 'other socket');
    await bob.tape.waitFor('typing', typingOf(room.id, alice.user.id, true), 2000, 'typing from the other socket');
    // Sentinel after everything: carol types.
    ackOk(await typing(carol.socket, room.id, true), 'carol');
    await bob.tape.waitFor('typing', typingOf(room.id, carol.user.id, true), 2000, 'sentinel');
    assert.deepEqual(
      bob.tape.all('typing', (p) => p?.userId === alice.user.id).map((p) => p.typing),
      [true],
      `only the other socket's typing:true relays:\n  ${bob.tape.describe()}`,
    );
    ackOk(await typing(alice2.socket, room.id, false), 'stop');
    ackOk(await typing(carol.socket, room.id, false), 'stop');
  });
});

describe('typing checks', () => {
  test('bad payloads are bad_request; an unknown room not_found; a non-member forbidden; nothing relayed', async () => {
    const { alice, bob, room } = await setup('checks');
    const eve = await newClient(ctx.base);
    for (const [what, payload] of [
      ['no roomId', { typing: true }],
      ['typing not a boolean', { roomId: room.id, typing: 'yes' }],
      ['no typing', { roomId: room.id }],
      ['roomId not an id', { roomId: 'x', typing: true }],
    ]) {
      ackError(await emitWithAck(bob.socket, 'typing', payload), 'bad_request', what);
    }
    ackError(await typing(bob.socket, randomUUID(), true), 'not_found', 'unknown room');
    ackError(await typing(eve.socket, room.id, true), 'forbidden', 'non-member');
    assert.equal(bob.socket.connected, true);

    // Sentinel: alice types; before it, nothing from bob (refused) or eve reached alice.
    ackOk(await typing(alice.socket, room.id, true), 'alice');
    await bob.tape.waitFor('typing', typingOf(room.id, alice.user.id, true), 2000, 'sentinel');
    ackOk(await typing(bob.socket, room.id, false), 'bob not typing: relays nothing');
    ackOk(await typing(bob.socket, room.id, true), 'bob types (sentinel for alice)');
    await alice.tape.waitFor('typing', typingOf(room.id, bob.user.id, true), 2000, 'bob typing');
    assert.deepEqual(alice.tape.all('typing'), [{ roomId: room.id, userId: bob.user.id, typing: true }], alice.tape.describe());
    ackOk(await typing(alice.socket, room.id, false), 'alice stops');
    ackOk(await typing(bob.socket, room.id, false), 'bob stops');
    assert.deepEqual(bob.tape.all('typing', (p) => p?.userId === eve.user.id), []);
  });
});
