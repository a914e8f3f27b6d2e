// The split deployment on real engines: 2 × `roomcast api` + 2 × `roomcast
// realtime` on PostgreSQL and each bus backend in turn. Clients use the real
// socket.io-client, spread over both realtime nodes; messages are posted
// through both API nodes.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { balancer } from '../lib/tcp.mjs';
import { checkFinalState, modelClient, startTraffic, until } from '../lib/scenario.mjs';

import { privateEngine, startCluster } from '../lib/cluster.mjs';
import {
  Inbox,
  closeAllSockets,
  connect,
  createRoom,
  emitWithAck,
  NO_LIMITS,
  postMessage,
  register,
} from '../lib/server.mjs';

/** Users, one room, `clients` sockets spread over the realtime nodes, all joined. */
async function populate(cluster, clients = 6) {
  const api = cluster.apis[0].base;
  const users = [];
  for (let i = 0; i < 3; i++) users.push(await register(api));
  const room = await createRoom(api, users[0].token, 'topology', users.slice(1).map((u) => u.user.id));
  const inboxes = [];
  for (let i = 0; i < clients; i++) {
    const node = cluster.realtimes[i % cluster.realtimes.length];
    const socket = await connect(node.base, users[i % users.length].token, { transports: ['websocket'] });
    const inbox = new Inbox(socket, 'receiveMessage');
    const ack = await emitWithAck(socket, 'joinRoom', { roomId: room.id });
    assert.equal(ack.ok, true, `join on ${node.base}: ${JSON.stringify(ack)}`);
    inboxes.push(inbox);
  }
  return { users, room, inboxes };
}

/** Every inbox got exactly the messages `seqs`, each once, in seq order. */
async function assertAllDelivered(inboxes, seqs, ms = 20_000) {
  for (const inbox of inboxes) {
    await inbox.waitForCount(seqs.length, ms);
  }
  for (const inbox of inboxes) {
    const got = inbox.items.map((m) => m.seq);
    assert.deepEqual(got, seqs, 'each message exactly once, in seq order');
  }
}

const sorted = (xs) => [...xs].sort((a, b) => a - b);

for (const backend of ['nats', 'redis', 'gcp']) {
  describe(`split deployment on ${backend} + PostgreSQL`, () => {
    test('every client on either realtime node gets every message posted through either API node exactly once', async () => {
      const cluster = await startCluster({ backend });
      try {
        const { users, room, inboxes } = await populate(cluster);
        const posts = [];
        for (let i = 0; i < 30; i++) {
          const api = cluster.apis[i % 2].base;
          posts.push(postMessage(api, users[i % users.length].token, room.id, `m${i}`));
        }
        const answers = await Promise.all(posts);
        for (const a of answers) assert.equal(a.status, 201, JSON.stringify(a.json));
        const seqs = sorted(answers.map((a) => a.json.message.seq));
        assert.deepEqual(seqs, Array.from({ length: 30 }, (_, i) => i + 1), 'gap-free seqs across both API nodes');
        await assertAllDelivered(inboxes, seqs);
      } finally {
        closeAllSockets();
        await cluster.stop();
      }
    });
  });
}

test('a client that drops on one realtime node and rejoins on the other with sinceEventSeq gets what it missed, once, in order (NATS)', async () => {
  // A replay buffer of one event: the gap comes from the store, through the API tier's internal route.
  const cluster = await startCluster({ backend: 'nats', extraEnv: { ROOMCAST_CHAT__REPLAY_BUFFER: '1' } });
  try {
    const [rt0, rt1] = cluster.realtimes;
    const api = (i) => cluster.apis[i % 2].base;
    const alice = await register(api(0));
    const bob = await register(api(0));
    const room = await createRoom(api(0), alice.token, 'rejoin elsewhere', [bob.user.id]);
    const join = async (base, who, since) => {
      const socket = await connect(base, who.token, { transports: ['websocket'] });
      const inbox = new Inbox(socket, 'receiveMessage');
      const payload = since === undefined ? { roomId: room.id } : { roomId: room.id, sinceEventSeq: since };
      const ack = await emitWithAck(socket, 'joinRoom', payload);
      assert.equal(ack.ok, true, JSON.stringify(ack));
      return { socket, inbox, ack };
    };
    const control = await join(rt1.base, alice);
    const first = await join(rt0.base, bob);
    const m1 = await postMessage(api(0), alice.token, room.id, 'm1');
    assert.equal((await first.inbox.waitFor((m) => m.id === m1.json.message.id, 10_000, 'm1')).eventSeq, 1);
    first.socket.disconnect();
    for (let i = 2; i <= 5; i++) {
      const r = await postMessage(api(i), alice.token, room.id, `m${i}`);
      assert.equal(r.status, 201);
    }
    await control.inbox.waitForCount(5, 10_000);

    const back = await join(rt1.base, bob, 1);
    assert.deepEqual([back.ack.recovered, back.ack.eventSeq], [true, 5], JSON.stringify(back.ack));
    await postMessage(api(1), alice.token, room.id, 'm6');
    await back.inbox.waitForCount(5, 10_000);
    await control.inbox.waitForCount(6, 10_000);
    assert.deepEqual(back.inbox.items.map((m) => [m.seq, m.eventSeq]), [[2, 2], [3, 3], [4, 4], [5, 5], [6, 6]]);
    assert.deepEqual(back.inbox.items, control.inbox.items.slice(1), 'the same events as a client that never dropped');
  } finally {
    closeAllSockets();
    await cluster.stop();
  }
});

/**
 * The rolling restart on `backend`: 2 API + 3 realtime nodes; the first two
 * realtime nodes behind a TCP balancer, restarted with SIGTERM in turn
 * during mixed traffic (posts, edits, deletions, reactions, read markers over
 * REST and sockets); one control client per user on the third node, which
 * never restarts. Every client reconnects and ends with the control's state
 * (and REST's). Returns what to report.
 */
// Traffic at 15 posts a second from one user, above its message rate limit
// (5/s after a burst of 30), which is not what this tests: limits off (NO_LIMITS).
async function rollingRestart(backend, { clients: n = 20, perSec = 15 } = {}) {
  const cluster = await startCluster({ backend, realtimes: 3, extraEnv: NO_LIMITS });
  const lb = await balancer(cluster.realtimes.slice(0, 2).map((r) => r.port));
  const clients = [];
  const controls = new Map();
  try {
    let next = 0;
    const pick = () => cluster.apis[next++ % 2].base;
    const alice = await register(pick());
    const bob = await register(pick());
    const carol = await register(pick());
    const room = await createRoom(pick(), alice.token, 'rolling', [bob.user.id, carol.user.id]);
    for (const who of [bob, carol]) {
      controls.set(who.user.id, await modelClient({ url: cluster.realtimes[2].base, who, roomId: room.id }));
    }
    for (let i = 0; i < n; i++) {
      const c = await modelClient({ url: lb.url, who: i % 2 ? carol : bob, roomId: room.id });
      c.gaps = [];
      c.on('disconnect', () => c.gaps.push([Date.now(), null]));
      c.on('connect', () => {
        const last = c.gaps[c.gaps.length - 1];
        if (last && last[1] === null) last[1] = Date.now();
      });
      clients.push(c);
    }

    const traffic = startTraffic({
      pick,
      roomId: room.id,
      poster: alice,
      perSec,
      senders: [...controls.values()],
      reactors: [bob, carol],
      readers: [bob, carol],
      socketFor: (who) => controls.get(who.user.id),
    });
    await traffic.waitPosted(20);
    for (let i = 0; i < 2; i++) {
      const port = cluster.realtimes[i].port;
      lb.down(port);
      await cluster.restartRealtime(i);
      lb.up(port);
      await traffic.waitPosted(traffic.posted.length + 10);
    }
    // Every client back (the signal: its connect event) before the traffic stops.
    await until(clients, ['connect'], () => clients.every((c) => c.socket.connected), 15_000, () =>
      `not every client reconnected: ${clients.filter((c) => !c.socket.connected).length} still away`,
    );
    await traffic.stop();

    const result = await checkFinalState({
      base: pick(),
      roomId: room.id,
      clients,
      controls,
      accepted: [...traffic.posted, ...traffic.sent],
    }).catch((e) => {
      e.message += `\n--- realtime stderr (warn) ---\n${cluster.realtimes.map((r) => r.stderr().slice(-3000)).join('\n')}`;
      throw e;
    });
    const gaps = [];
    for (const c of clients) {
      assert.ok(c.gaps.length >= 1, 'every client was moved at least once');
      for (const [off, on] of c.gaps) {
        assert.ok(on !== null, 'every client reconnected');
        gaps.push(on - off);
      }
    }
    for (const c of controls.values()) assert.equal(c.drops, 0, 'the control never dropped');
    gaps.sort((a, b) => a - b);
    return (
      `rolling restart on ${backend}: ${clients.length} clients + ${controls.size} controls, ${result.messages} messages, ` +
      `${traffic.stats.edits} edits, ${traffic.stats.deletes} deletions, ${traffic.stats.reactions} reaction toggles, ${traffic.stats.reads} read markers; ` +
      `${gaps.length} reconnects, time to reconnect p50 ${gaps[Math.floor(gaps.length / 2)]} ms, max ${gaps[gaps.length - 1]} ms; ` +
      'every client ends with the control\'s and REST\'s messages, reactions and unread count'
    );
  } catch (e) {
    e.message += `\n--- api stderr (warn) ---\n${cluster.apis.map((p) => p.stderr().slice(-3000)).join('\n')}`;
    throw e;
  } finally {
    for (const c of [...clients, ...controls.values()]) c.close();
    lb.close();
    closeAllSockets();
    await cluster.stop();
  }
}

// CI size; the benchmark size is `ROLLING_CLIENTS=…` (BENCHMARKS.md).
const ROLLING_CLIENTS = Number(process.env.ROLLING_CLIENTS ?? 20);

test('rolling restart (NATS): each realtime node restarted with SIGTERM in turn during traffic; every client reconnects, gets every message once, in order, and ends with the control\'s state', async (t) => {
  t.diagnostic(await rollingRestart('nats', { clients: ROLLING_CLIENTS }));
});

// Not on the Pub/Sub emulator yet: there the clients moved off a restarted
// node fell 20–80 events behind and did not catch up within 60 s (see
// CHANGELOG.md, under issue #7).
test('rolling restart (Redis, smaller): the same on Redis Streams', async (t) => {
  t.diagnostic(await rollingRestart('redis', { clients: 10, perSec: 10 }));
});

for (const backend of ['nats', 'redis']) {
  test(`${backend} down: the API keeps accepting, and everything is delivered once it is back`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), `roomcast-${backend}-`));
    const engine = await privateEngine(backend, dir);
    const cluster = await startCluster({ backend, busUrl: engine.url });
    try {
      const { users, room, inboxes } = await populate(cluster, 4);
      const first = await postMessage(cluster.apis[0].base, users[0].token, room.id, 'before');
      assert.equal(first.status, 201);
      await assertAllDelivered(inboxes, [1]);

      await engine.stop();
      const during = [];
      for (let i = 0; i < 10; i++) {
        const a = await postMessage(cluster.apis[i % 2].base, users[i % users.length].token, room.id, `during ${i}`);
        assert.equal(a.status, 201, `accepted while ${backend} is down: ${JSON.stringify(a.json)}`);
        during.push(a.json.message.seq);
      }
      await engine.start();
      await assertAllDelivered(inboxes, [1, ...sorted(during)], 60_000);
    } finally {
      closeAllSockets();
      await cluster.stop();
      await engine.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('an API node killed with SIGKILL mid-traffic loses no accepted message', async () => {
  const cluster = await startCluster({ backend: 'nats' });
  try {
    const { users, room, inboxes } = await populate(cluster, 4);
    const accepted = [];
    const [survivor, victim] = cluster.apis;
    for (let i = 0; i < 40; i++) {
      if (i === 20) victim.proc.kill('SIGKILL');
      const api = i < 20 && i % 2 ? victim : survivor;
      const a = await postMessage(api.base, users[i % users.length].token, room.id, `k${i}`);
      assert.equal(a.status, 201, JSON.stringify(a.json));
      accepted.push(a.json.message.seq);
    }
    await assertAllDelivered(inboxes, sorted(accepted), 30_000);
  } finally {
    closeAllSockets();
    await cluster.stop();
  }
});
