// The partitioned outbox relay on PostgreSQL + NATS (issue #15): the outbox
// partitions are spread over the live API nodes and taken over when one is
// killed, and a bus outage under load only grows the backlog, which drains
// once the bus is back. Every message arrives once and in its room's order.
// Posts under load: limits off (NO_LIMITS).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { privateEngine, startCluster } from '../lib/cluster.mjs';
import { closeAllSockets, connect, createRoom, emitWithAck, Inbox, NO_LIMITS, postMessage, register } from '../lib/server.mjs';

/** The `outbox` part of an API node's `/healthz`. */
async function outbox(node) {
  const res = await fetch(`${node.base}/healthz`);
  const body = await res.json();
  assert.ok(body.outbox, `/healthz of ${node.base} has an outbox part: ${JSON.stringify(body)}`);
  return body.outbox;
}

/** Poll `/healthz` of `nodes` (every 50 ms, at most `ms`) until `done(readings)`. */
async function healthUntil(nodes, done, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await Promise.all(nodes.map(outbox));
    if (done(last)) return last;
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms; last /healthz outbox: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ALL = Array.from({ length: 16 }, (_, i) => i);
const covers = (readings) =>
  JSON.stringify(readings.flatMap((r) => r.partitions).sort((a, b) => a - b)) === JSON.stringify(ALL);

/** `n` rooms of one owner, one socket per room joined (on `realtime`), a `receiveMessage` inbox each. */
async function rooms(api, realtime, n) {
  const owner = await register(api);
  const out = [];
  for (let i = 0; i < n; i++) {
    const room = await createRoom(api, owner.token, `p${i}`);
    const socket = await connect(realtime.base, owner.token, { transports: ['websocket'] });
    const inbox = new Inbox(socket, 'receiveMessage');
    const ack = await emitWithAck(socket, 'joinRoom', { roomId: room.id });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    out.push({ room, inbox, token: owner.token });
  }
  return out;
}

/** Post `count` messages to each room, rooms at once, each room's in turn, through `pick(i)`. */
async function postEach(rs, count, pick, tag) {
  await Promise.all(
    rs.map(async (r) => {
      for (let i = 0; i < count; i++) {
        const a = await postMessage(pick(i).base, r.token, r.room.id, `${tag} ${i}`);
        assert.equal(a.status, 201, `${tag} ${i}: ${JSON.stringify(a.json)}`);
      }
    }),
  );
}

/** Each room's socket got seqs 1..n, once each, in order, and nothing of another room. */
async function assertRoomsDelivered(rs, n, ms) {
  for (const r of rs) await r.inbox.waitForCount(n, ms);
  for (const r of rs) {
    assert.ok(r.inbox.items.every((m) => m.roomId === r.room.id), 'only its own room');
    assert.deepEqual(
      r.inbox.items.map((m) => m.seq),
      Array.from({ length: n }, (_, i) => i + 1),
      'every message once, in the room\'s order',
    );
  }
}

test('two API nodes share the outbox partitions; after a SIGKILL the survivor takes them all over and nothing is lost', async () => {
  const cluster = await startCluster({ backend: 'nats', apis: 2, realtimes: 1, extraEnv: NO_LIMITS });
  try {
    const [survivor, victim] = cluster.apis;
    const shared = await healthUntil(
      cluster.apis,
      (r) => covers(r) && r.every((x) => x.partitions.length === 8),
      10_000,
      'both API nodes hold 8 of the 16 partitions',
    );
    assert.ok(covers(shared), 'no partition held twice');
    const rs = await rooms(survivor.base, cluster.realtimes[0], 8);

    await postEach(rs, 10, (i) => (i % 2 ? victim : survivor), 'before');
    victim.proc.kill('SIGKILL');
    // Its session ends with its socket: the survivor renews every second.
    await healthUntil([survivor], (r) => r[0].partitions.length === 16, 5_000, 'the survivor holds all 16 partitions');
    await postEach(rs, 10, () => survivor, 'after');
    await assertRoomsDelivered(rs, 20, 30_000);
  } finally {
    closeAllSockets();
    await cluster.stop();
  }
});

test('the bus stopped for 10 s under load: posts answer 201, the backlog grows, then drains in order with nothing lost or doubled', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-outage-'));
  const engine = await privateEngine('nats', dir);
  const cluster = await startCluster({ backend: 'nats', busUrl: engine.url, apis: 2, realtimes: 1, extraEnv: NO_LIMITS });
  try {
    const rs = await rooms(cluster.apis[0].base, cluster.realtimes[0], 4);
    await postEach(rs, 2, (i) => cluster.apis[i % 2], 'before');
    await assertRoomsDelivered(rs, 2, 20_000);

    await engine.stop();
    // 10 s of posts, every room every 100 ms, through both API nodes.
    const until = Date.now() + 10_000;
    const counts = rs.map(() => 2);
    await Promise.all(
      rs.map(async (r, k) => {
        for (let i = 0; Date.now() < until && i < 200; i++) {
          const a = await postMessage(cluster.apis[i % 2].base, r.token, r.room.id, `during ${i}`);
          assert.equal(a.status, 201, `accepted while the bus is down: ${JSON.stringify(a.json)}`);
          counts[k] += 1;
          await new Promise((res) => setTimeout(res, 100));
        }
      }),
    );
    const during = await Promise.all(cluster.apis.map(outbox));
    const waiting = during.reduce((n, o) => Math.max(n, o.backlogRows), 0);
    assert.ok(waiting >= counts.reduce((a, b) => a + b, 0) - 8, `the backlog holds what was posted: ${JSON.stringify(during)}`);
    assert.ok(during.every((o) => o.oldestAgeMs >= 5_000), `its oldest row is about 10 s old: ${JSON.stringify(during)}`);

    await engine.start();
    await healthUntil(cluster.apis, (r) => r.every((o) => o.backlogRows === 0), 60_000, 'the backlog drains');
    for (const [k, r] of rs.entries()) {
      await r.inbox.waitForCount(counts[k], 30_000);
      assert.deepEqual(
        r.inbox.items.map((m) => m.seq),
        Array.from({ length: counts[k] }, (_, i) => i + 1),
        'every message once, in the room\'s order',
      );
    }
  } finally {
    closeAllSockets();
    await cluster.stop();
    await engine.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
