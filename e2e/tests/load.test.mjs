// Concurrency: many simultaneous posts to one room, and many fresh
// connections that join a room the instant they connect. Bounded in count,
// loopback only.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { api, connect, createRoom, emitWithAck, Inbox, live, makeSocket, NO_LIMITS, postMessage, register, useServer, withDeadline } from '../lib/server.mjs';

// A load test: limits off (NO_LIMITS).
const ctx = useServer(NO_LIMITS);

describe('load', () => {
  test('100 concurrent posts: seqs 1..100, each delivered once in order, history complete', { timeout: 120_000 }, async () => {
    const N = 100;
    const alice = await register(ctx.base);
    const room = await createRoom(ctx.base, alice.token, 'burst', []);
    const socket = await connect(ctx.base, alice.token);
    const inbox = new Inbox(socket, 'receiveMessage');
    const ack = await emitWithAck(socket, 'joinRoom', { roomId: room.id });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    assert.equal(ack.seq, 0, JSON.stringify(ack));

    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => postMessage(ctx.base, alice.token, room.id, `burst ${i}`, `burst-${i}`)),
    );
    const bad = answers.filter((r) => r.status !== 201);
    assert.deepEqual(
      bad.map((r) => `${r.status} ${r.text}`),
      [],
      `${bad.length} of ${N} concurrent posts were not 201`,
    );
    const messages = answers.map((r) => r.json.message);
    const seqs = messages.map((m) => m.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1), 'seqs are exactly 1..100');
    // Each post got its own message back.
    answers.forEach((r, i) => assert.equal(r.json.message.clientMsgId, `burst-${i}`));

    await inbox.waitForCount(N, 15_000);
    const received = inbox.items.slice(0, N);
    assert.deepEqual(
      received.map((m) => m.seq),
      Array.from({ length: N }, (_, i) => i + 1),
      'receiveMessage events arrive once each, in seq order',
    );
    const bySeq = new Map(messages.map((m) => [m.seq, m]));
    for (const m of received) assert.deepEqual(live(m), bySeq.get(m.seq));
    assert.deepEqual(
      received.map((m) => m.eventSeq),
      Array.from({ length: N }, (_, i) => i + 1),
      'each message is the room\'s next logged event',
    );

    const hist = await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages?afterSeq=0&limit=200`, alice.token);
    assert.equal(hist.status, 200, hist.text);
    assert.deepEqual(hist.json.messages, [...messages].sort((a, b) => a.seq - b.seq));

    // Barrier: one more message; once it is here, no stray duplicate of the first 100 may follow it unseen.
    const sentinel = await postMessage(ctx.base, alice.token, room.id, 'sentinel', 'burst-sentinel');
    assert.equal(sentinel.status, 201, sentinel.text);
    assert.equal(sentinel.json.message.seq, N + 1);
    await inbox.waitFor((m) => m?.id === sentinel.json.message.id, 2000, 'sentinel message');
    assert.equal(inbox.items.length, N + 1, `received ${inbox.items.length} events for ${N + 1} messages`);
    assert.deepEqual(live(inbox.items[N]), sentinel.json.message);
    socket.close();
  });

  test('200 fresh websocket connections each joining on connect are all ACKed {ok:true}', { timeout: 120_000 }, async () => {
    const TOTAL = 200;
    const BATCH = 50;
    const alice = await register(ctx.base);
    const room = await createRoom(ctx.base, alice.token, 'crowd', []);

    /** Open a socket and emit joinRoom synchronously inside its 'connect' handler. */
    const connectAndJoin = (n) => {
      const socket = makeSocket(ctx.base, alice.token, { transports: ['websocket'] });
      const done = new Promise((resolve, reject) => {
        socket.once('connect_error', (err) => reject(new Error(`socket ${n}: connect_error ${err.message}`)));
        socket.once('connect', () => {
          socket.timeout(5000).emit('joinRoom', { roomId: room.id }, (err, ack) => {
            if (err) reject(new Error(`socket ${n}: no joinRoom ACK within 5 s`));
            else resolve(ack);
          });
        });
      });
      return { socket, done: withDeadline(done, 15_000, `socket ${n}: connect + joinRoom`) };
    };

    const sockets = [];
    const acks = [];
    try {
      for (let start = 0; start < TOTAL; start += BATCH) {
        const batch = Array.from({ length: BATCH }, (_, i) => connectAndJoin(start + i));
        sockets.push(...batch.map((b) => b.socket));
        const results = await Promise.allSettled(batch.map((b) => b.done));
        for (const r of results) acks.push(r.status === 'fulfilled' ? r.value : { rejected: r.reason.message });
      }
      const notOk = acks
        .map((ack, i) => ({ i, ack }))
        .filter(({ ack }) => !(ack && ack.ok === true && ack.seq === 0));
      assert.deepEqual(
        notOk.slice(0, 5),
        [],
        `${notOk.length} of ${TOTAL} connections did not get {ok:true, seq:0} (first 5 shown)`,
      );
      assert.equal(acks.length, TOTAL);
      assert.ok(sockets.every((s) => s.connected), 'every socket is still connected');

      // Every joined socket actually receives a message in the room.
      const inboxes = sockets.map((s) => new Inbox(s, 'receiveMessage'));
      const sent = await postMessage(ctx.base, alice.token, room.id, 'hello crowd', 'crowd-1');
      assert.equal(sent.status, 201, sent.text);
      const arrivals = await Promise.allSettled(
        inboxes.map((ib) => ib.waitFor((m) => m?.id === sent.json.message.id, 10_000, 'crowd message')),
      );
      const missing = arrivals.filter((a) => a.status === 'rejected').length;
      assert.equal(missing, 0, `${missing} of ${TOTAL} joined sockets did not receive the message`);
    } finally {
      for (const s of sockets) s.close();
    }
    assert.ok(sockets.every((s) => !s.connected), 'every socket closed');
  });
});
