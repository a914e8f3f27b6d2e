// Replay on rejoin (issue #7): `joinRoom {roomId, sinceEventSeq}` sends the
// room's logged events after that position, in order, then the live stream —
// no gap and no duplicate at the seam — from the realtime node's buffer or,
// further back, from the store; `recovered: false` when the gap is gone.
// Every client's view is compared with a control client that never dropped.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { emitWithAck, startServer, useServer } from '../lib/server.mjs';
import { ackError, ackOk, call, connectAs, joinRoom, makeRoom, newClient, reactionPath, say } from '../lib/chat.mjs';

const ctx = useServer();

/** `joinRoom` with `sinceEventSeq`; returns the ACK (asserted ok). */
async function rejoin(socket, roomId, since) {
  return ackOk(await emitWithAck(socket, 'joinRoom', { roomId, sinceEventSeq: since }), `rejoin since ${since}`);
}

/** The logged events of `roomId` on a tape, as `[event, eventSeq]`, in arrival order. */
const logged = (tape, roomId) =>
  tape.entries
    .filter((e) => e.payload?.roomId === roomId && Number.isInteger(e.payload?.eventSeq))
    .map((e) => [e.event, e.payload.eventSeq]);

/** Full payloads of the logged events of `roomId` with eventSeq > `after`. */
const payloads = (tape, roomId, after = 0) =>
  tape.entries.filter((e) => e.payload?.roomId === roomId && e.payload?.eventSeq > after).map((e) => [e.event, e.payload]);

/**
 * alice (the control, never drops) and bob in a room; bob sees message 1,
 * drops, misses messages 2 and 3, an edit and a reaction, comes back on a new
 * socket and rejoins after eventSeq 1; then message 6 arrives live.
 */
async function dropAndRejoin(base) {
  const alice = await newClient(base);
  const bob = await newClient(base);
  const room = await makeRoom(base, alice, 'replay', [bob]);
  const control = await joinRoom(alice.socket, room.id);
  assert.equal(control.eventSeq, 0, 'a new room has no events yet');
  await joinRoom(bob.socket, room.id);
  const m1 = await say(base, alice, room.id, 'one');
  assert.equal((await bob.tape.waitFor('receiveMessage', (m) => m?.id === m1.id, 3000, 'm1')).eventSeq, 1);
  bob.socket.disconnect();

  const m2 = await say(base, alice, room.id, 'two');
  await say(base, alice, room.id, 'three');
  await call(base, 'PATCH', `/v1/rooms/${room.id}/messages/${m2.id}`, alice.token, { body: 'two, edited' }, 200);
  await call(base, 'PUT', reactionPath(room.id, m2.id, '👍'), alice.token, undefined, 200);

  const back = await connectAs(base, bob, { joinUser: false, label: 'bob again' });
  const ack = await rejoin(back.socket, room.id, 1);
  assert.deepEqual([ack.recovered, ack.eventSeq], [true, 5], JSON.stringify(ack));
  const m6 = await say(base, alice, room.id, 'six');
  await back.tape.waitFor('receiveMessage', (m) => m?.id === m6.id, 3000, 'live after the seam');
  await alice.tape.waitFor('receiveMessage', (m) => m?.id === m6.id, 3000, 'control');

  assert.deepEqual(logged(back.tape, room.id), [
    ['receiveMessage', 2],
    ['receiveMessage', 3],
    ['messageUpdated', 4],
    ['reactionAdded', 5],
    ['receiveMessage', 6],
  ]);
  assert.deepEqual(payloads(back.tape, room.id), payloads(alice.tape, room.id, 1), 'what bob got is what the control got');
  return { alice, bob, back, room };
}

describe('joinRoom with sinceEventSeq', () => {
  test('replays what the socket missed from the node\'s buffer, then the live stream, each event once', async () => {
    await dropAndRejoin(ctx.base);
  });

  test('up to date: nothing replayed, recovered; ahead of the log: recovered false, joined anyway', async () => {
    const { bob, room, alice } = await dropAndRejoin(ctx.base);
    const again = await connectAs(ctx.base, bob, { joinUser: false, label: 'bob, up to date' });
    const ack = await rejoin(again.socket, room.id, 6);
    assert.deepEqual([ack.recovered, ack.eventSeq], [true, 6]);
    const ahead = await connectAs(ctx.base, alice, { joinUser: false, label: 'ahead' });
    const lost = await rejoin(ahead.socket, room.id, 1_000_000);
    assert.deepEqual([lost.recovered, lost.eventSeq], [false, 6]);
    const m7 = await say(ctx.base, alice, room.id, 'seven');
    for (const t of [again.tape, ahead.tape]) {
      await t.waitFor('receiveMessage', (m) => m?.id === m7.id, 3000, 'live after rejoin');
      assert.deepEqual(logged(t, room.id), [['receiveMessage', 7]]);
    }
  });

  test('bad sinceEventSeq → {ok:false, error:{code:"bad_request"}}', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'bad since');
    for (const since of [-1, 'x', 1.5, null]) {
      const ack = await emitWithAck(alice.socket, 'joinRoom', { roomId: room.id, sinceEventSeq: since });
      if (since === null) ackOk(ack, 'null is no position');
      else ackError(ack, 'bad_request', `sinceEventSeq ${JSON.stringify(since)}`);
    }
  });
});

describe('replay beyond the node\'s buffer', () => {
  test('a buffer of 2 events: the older part of the gap comes from the store, the rest from the buffer', async (t) => {
    const server = await startServer({ ROOMCAST_CHAT__REPLAY_BUFFER: '2' });
    t.after(() => server.stop());
    await dropAndRejoin(server.base);
  });

  test('a gap pruned by retention is not recovered: the client is told to reload', async (t) => {
    const server = await startServer({
      ROOMCAST_CHAT__REPLAY_BUFFER: '1',
      ROOMCAST_EVENT_LOG__KEEP_PER_ROOM: '2',
      ROOMCAST_EVENT_LOG__PRUNE_INTERVAL_SECS: '1',
    });
    t.after(() => server.stop());
    const base = server.base;
    const alice = await newClient(base);
    const room = await makeRoom(base, alice, 'pruned');
    for (let i = 1; i <= 5; i++) await say(base, alice, room.id, `m${i}`);
    // Retention runs every second: poll the log's own answer (the signal)
    // until it reports the gap gone, for at most 5 s.
    const deadline = Date.now() + 5000;
    let page;
    for (;;) {
      page = await call(base, 'GET', `/v1/rooms/${room.id}/events?afterEventSeq=1`, alice.token, undefined, 200);
      if (!page.recovered || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(page.recovered, false, 'retention pruned events 1..3 within 5 s');
    const again = await connectAs(base, alice, { joinUser: false });
    const ack = await rejoin(again.socket, room.id, 1);
    assert.deepEqual([ack.recovered, ack.eventSeq], [false, 5]);
    const kept = await rejoin(again.socket, room.id, 3);
    assert.deepEqual([kept.recovered, kept.eventSeq], [true, 5]);
  });
});
