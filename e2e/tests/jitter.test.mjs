// The jitter scenario (issue #7) at CI size: 200 clients in one room receive
// 120 messages posted at 2/s; every client's TCP connection is cut without a
// clean close (RST) about every 15 s and stays down about 2 s. Each client
// uses the client library (clients/js) on the real socket.io-client.
// Expected: every client hands over every message exactly once, in order,
// the same as a control client that never dropped. Replay latency (post →
// receipt of the messages a client missed while down) is reported.
//
// The second test runs the same cuts against the split deployment (2 API +
// 2 realtime nodes, NATS + PostgreSQL; JITTER_SPLIT_CLIENTS, default 150,
// JITTER_SPLIT_MESSAGES, default 80) with mixed traffic (edits, deletions,
// reactions, read markers) and the final-state check: every client ends with
// the messages, reactions and unread count of a control client that never
// dropped, and of REST.
//
// Runs in the websocket pass of the suite (the cuts are what it tests, not
// the transport); the full size is a benchmark scenario (BENCHMARKS.md).

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { io } from 'socket.io-client';
import { RoomcastClient } from '../../clients/js/index.js';
import { createRoom, NO_LIMITS, register, TRANSPORT, useServer, withDeadline } from '../lib/server.mjs';
import { say } from '../lib/chat.mjs';
import { startCluster } from '../lib/cluster.mjs';
import { checkFinalState, modelClient, startTraffic } from '../lib/scenario.mjs';
import { cuttableProxy } from '../lib/tcp.mjs';
import { percentile, scheduleCuts } from '../lib/jitter.mjs';

const CLIENTS = Number(process.env.JITTER_CLIENTS ?? 200);
const MESSAGES = Number(process.env.JITTER_MESSAGES ?? 120);
const PER_SEC = 2;
const SPLIT_CLIENTS = Number(process.env.JITTER_SPLIT_CLIENTS ?? 150);
const SPLIT_MESSAGES = Number(process.env.JITTER_SPLIT_MESSAGES ?? 80);

// A load test: limits off (NO_LIMITS).
const ctx = useServer(NO_LIMITS);
const cleanup = [];
after(() => {
  for (const f of cleanup.splice(0)) f();
});


/** A library client through `url`; records [id, eventSeq, receivedAt] of each message handed over. */
async function member(url, session) {
  const c = new RoomcastClient({
    io,
    url,
    token: session.token,
    joinUser: false,
    socketOptions: { transports: ['websocket'], forceNew: true, reconnectionDelay: 300, reconnectionDelayMax: 1500 },
  });
  cleanup.push(() => c.close());
  c.got = [];
  c.on('receiveMessage', (m) => c.got.push([m.id, m.eventSeq, Date.now()]));
  await c.connect();
  return c;
}

test(`jitter: ${CLIENTS} clients, ${MESSAGES} messages at ${PER_SEC}/s, TCP cut every ~15 s for ~2 s: 100% delivered once, in order`, {
  skip: TRANSPORT !== 'websocket' && 'runs in the websocket pass',
  timeout: 240_000,
}, async (t) => {
  const base = ctx.base;
  const port = Number(new URL(base).port);
  const poster = await register(base);
  const reader = await register(base);
  const room = await createRoom(base, poster.token, 'jitter', [reader.user.id]);
  const control = await member(base, reader);
  await control.joinRoom(room.id);

  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const proxy = await cuttableProxy(port);
    cleanup.push(() => proxy.close());
    const c = await member(`http://127.0.0.1:${proxy.port}`, reader);
    await c.joinRoom(room.id);
    c.proxy = proxy;
    clients.push(c);
  }

  const start = Date.now();
  const stopCuts = scheduleCuts(clients);
  cleanup.push(stopCuts);

  const posted = new Map(); // id → post time
  for (let i = 0; i < MESSAGES; i++) {
    const due = start + (i * 1000) / PER_SEC;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
    const at = Date.now();
    const m = await say(base, poster, room.id, `m${i}`);
    posted.set(m.id, at);
  }
  stopCuts();

  const everyone = [control, ...clients];
  const short = () => everyone.filter((c) => c.got.length < MESSAGES).length;
  await withDeadline(
    new Promise((resolve) => {
      if (short() === 0) return resolve();
      for (const c of everyone) c.on('receiveMessage', () => short() === 0 && resolve());
    }),
    60_000,
    () => `not every client got all ${MESSAGES} messages: ${short()} short`,
  );

  const want = control.got.map(([id, seq]) => [id, seq]);
  assert.equal(want.length, MESSAGES);
  const late = [];
  let cuts = 0;
  for (const c of clients) {
    assert.deepEqual(c.got.map(([id, seq]) => [id, seq]), want, 'every message once, in order, like the control');
    cuts += c.proxy.cuts;
    for (const [id, , at] of c.got) {
      const delay = at - posted.get(id);
      if (delay > 500) late.push(delay);
    }
  }
  assert.ok(cuts >= CLIENTS, `every client was cut at least once on average (${cuts} cuts)`);
  t.diagnostic(
    `jitter: ${CLIENTS} clients, ${cuts} cuts, ${MESSAGES * CLIENTS} deliveries, 100% once in order; ` +
      `replayed (> 500 ms late): ${late.length}, p50 ${percentile(late, 50)} ms, p99 ${percentile(late, 99)} ms, max ${Math.max(0, ...late)} ms`,
  );
});

test(`jitter on the split deployment (NATS + PostgreSQL): ${SPLIT_CLIENTS} clients, ${SPLIT_MESSAGES} posts at ${PER_SEC}/s with edits, reactions and read markers, TCP cut every ~15 s for ~2 s: every client ends with the control's state`, {
  skip: TRANSPORT !== 'websocket' && 'runs in the websocket pass',
  timeout: 300_000,
}, async (t) => {
  const cluster = await startCluster({ backend: 'nats', extraEnv: NO_LIMITS });
  const clients = [];
  try {
    let n = 0;
    const pick = () => cluster.apis[n++ % 2].base;
    const alice = await register(pick());
    const bob = await register(pick());
    const carol = await register(pick());
    const room = await createRoom(pick(), alice.token, 'jitter split', [bob.user.id, carol.user.id]);
    const controls = new Map();
    for (const [i, who] of [bob, carol].entries()) {
      const c = await modelClient({ url: cluster.realtimes[i].base, who, roomId: room.id });
      cleanup.push(() => c.close());
      controls.set(who.user.id, c);
    }
    for (let i = 0; i < SPLIT_CLIENTS; i++) {
      const proxy = await cuttableProxy(cluster.realtimes[i % 2].port);
      cleanup.push(() => proxy.close());
      const c = await modelClient({
        url: `http://127.0.0.1:${proxy.port}`,
        who: i % 2 ? carol : bob,
        roomId: room.id,
        socketOptions: { reconnectionDelay: 300, reconnectionDelayMax: 1500 },
      });
      cleanup.push(() => c.close());
      c.proxy = proxy;
      clients.push(c);
    }

    const stopCuts = scheduleCuts(clients);
    cleanup.push(stopCuts);
    const traffic = startTraffic({
      pick,
      roomId: room.id,
      poster: alice,
      perSec: PER_SEC,
      reactors: [bob, carol],
      readers: [bob, carol],
      socketFor: (who) => controls.get(who.user.id),
    });
    await traffic.waitPosted(SPLIT_MESSAGES, (SPLIT_MESSAGES / PER_SEC) * 1000 + 60_000);
    await traffic.stop();
    stopCuts();

    const result = await checkFinalState({
      base: pick(),
      roomId: room.id,
      clients,
      controls,
      accepted: traffic.posted,
    });
    const cuts = clients.reduce((a, c) => a + c.proxy.cuts, 0);
    const recoveries = clients.reduce((a, c) => a + c.recoveries, 0);
    assert.ok(cuts >= SPLIT_CLIENTS, `every client was cut at least once on average (${cuts} cuts)`);
    for (const c of controls.values()) assert.equal(c.drops, 0, 'the control never dropped');
    t.diagnostic(
      `jitter (split, NATS): ${SPLIT_CLIENTS} clients + 2 controls, ${cuts} cuts, ${result.messages} messages, ` +
        `${traffic.stats.edits} edits, ${traffic.stats.deletes} deletions, ${traffic.stats.reactions} reaction toggles, ${traffic.stats.reads} read markers, ` +
        `${result.lastEventSeq} room events; ${recoveries} reconnects recovered by the server (rooms and room list); every client ends with the control's and REST's state`,
    );
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
});
