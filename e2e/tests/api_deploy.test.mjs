// Deploying the API tier (issue #7) on the split deployment, NATS +
// PostgreSQL: 2 × `roomcast api` whose internal listeners are behind a TCP
// balancer (the realtime nodes' `realtime.api_url`) + 2 × `roomcast realtime`.
//
// - API deploy: both API nodes restarted in turn with SIGTERM while messages
//   are posted over REST (to whichever API node is up), sent over sockets
//   (`sendMessage` → chat.in), edited, deleted, reacted to and read: no socket
//   disconnects, every accepted message stored once and delivered to every
//   client once, in order; every client ends with the state of a control
//   client and of REST (messages, reactions, unread counts).
// - API drain: an API node stopped with SIGTERM while 8 sockets keep
//   sending commands (each with up to 4 ACKed but not yet carried out):
//   every ACKed clientMsgId is stored exactly once. Commands the stopping
//   node's NATS client had received but not handed over come back after
//   NATS `ack_wait_ms` (30 s): the time to the last one is reported.
//
// Runs in the websocket pass of the suite (it tests the deploy, not the transport).
// Traffic under load: limits off (NO_LIMITS).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { io } from 'socket.io-client';

import { RoomcastClient } from '../../clients/js/index.js';
import { startCluster } from '../lib/cluster.mjs';
import { history } from '../lib/chat.mjs';
import { checkFinalState, modelClient, startTraffic, until } from '../lib/scenario.mjs';
import { createRoom, NO_LIMITS, register, TRANSPORT, withDeadline } from '../lib/server.mjs';

const skip = TRANSPORT !== 'websocket' && 'runs in the websocket pass';
const CLIENTS = Number(process.env.API_DEPLOY_CLIENTS ?? 12);

/** Routing for the test's own REST calls: round robin over the API nodes taking requests. */
function router(cluster) {
  const up = new Set(cluster.apis.map((_, i) => i));
  let next = 0;
  return {
    pick: () => {
      const live = [...up];
      return cluster.apis[live[next++ % live.length]].base;
    },
    /** Restart node `i` as a deploy does: no new requests to it, SIGTERM, start again, back in. */
    async restart(i) {
      up.delete(i);
      const t0 = Date.now();
      await cluster.restartApi(i);
      up.add(i);
      return Date.now() - t0;
    },
  };
}

// The full size on NATS; smaller on Redis Streams and on the Pub/Sub
// emulator (API nodes only are restarted, so the emulator's trouble with a
// restarted realtime node's stream does not arise; see recovery.test.mjs).
for (const [backend, n] of [['nats', CLIENTS], ['redis', 6], ['gcp', 6]]) {
test(`API deploy (${backend}): both API nodes restarted with SIGTERM in turn during traffic; no socket disconnects, every message once in order, every client ends like the control and REST`, {
  skip,
  timeout: 240_000,
}, async (t) => {
  const cluster = await startCluster({ backend, apiBalancer: true, extraEnv: NO_LIMITS });
  const clients = [];
  try {
    const lb = router(cluster);
    const alice = await register(lb.pick());
    const bob = await register(lb.pick());
    const carol = await register(lb.pick());
    const room = await createRoom(lb.pick(), alice.token, 'api deploy', [bob.user.id, carol.user.id]);
    for (let i = 0; i < n; i++) {
      const node = cluster.realtimes[i % cluster.realtimes.length];
      clients.push(await modelClient({ url: node.base, who: i % 2 ? carol : bob, roomId: room.id }));
    }
    const controls = new Map([[bob.user.id, clients[0]], [carol.user.id, clients[1]]]);

    const traffic = startTraffic({
      pick: lb.pick,
      roomId: room.id,
      poster: alice,
      perSec: 10,
      // At most 12 sockets send (one command a second each): a larger run
      // adds receivers, not load.
      senders: clients.slice(0, 12),
      sendEveryMs: 1000,
      reactors: [bob, carol],
      readers: [bob, carol],
      socketFor: (who) => controls.get(who.user.id),
    });
    await traffic.waitPosted(20);
    const restarts = [];
    for (let i = 0; i < cluster.apis.length; i++) {
      restarts.push(await lb.restart(i));
      // Traffic goes on through the restarted node too before the next one goes.
      await traffic.waitPosted(traffic.posted.length + 20);
    }
    await traffic.stop();

    const result = await checkFinalState({
      base: lb.pick(),
      roomId: room.id,
      clients,
      controls,
      accepted: [...traffic.posted, ...traffic.sent],
    });
    assert.deepEqual(clients.map((c) => c.drops), clients.map(() => 0), 'no socket disconnected');
    assert.equal(result.messages, traffic.posted.length + traffic.sent.length, 'nothing stored but what was accepted');
    t.diagnostic(
      `API deploy (${backend}): ${clients.length} clients, ${result.messages} messages (${traffic.stats.posts} over REST, ${traffic.stats.sends} over sockets), ` +
        `${traffic.stats.edits} edits, ${traffic.stats.deletes} deletions, ${traffic.stats.reactions} reaction toggles, ${traffic.stats.reads} read markers; ` +
        `restarts took ${restarts.join(' / ')} ms; 0 disconnects; REST requests sent again after a closed connection: ${traffic.stats.resent}; ` +
        `sendMessage retried after an internal ACK: ${traffic.stats.sendRetries}`,
    );
  } catch (e) {
    const tail = (p) => p.stderr().slice(-3000);
    e.message += `\n--- realtime stderr (warn) ---\n${cluster.realtimes.map(tail).join('\n')}`;
    e.message += `\n--- api stderr (warn) ---\n${cluster.apis.map(tail).join('\n')}`;
    throw e;
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
});
}

test('API drain (NATS): sockets keep sending commands while an API node stops with SIGTERM; every ACKed command is carried out exactly once', {
  skip,
  timeout: 120_000,
}, async (t) => {
  const cluster = await startCluster({ backend: 'nats', apiBalancer: true, extraEnv: NO_LIMITS });
  const senders = [];
  try {
    const base = cluster.apis[1].base;
    const alice = await register(base);
    const room = await createRoom(base, alice.token, 'api drain');
    const listener = new RoomcastClient({ io, url: cluster.realtimes[0].base, token: alice.token, joinUser: false, socketOptions: { transports: ['websocket'], forceNew: true } });
    senders.push(listener);
    const seen = new Map(); // clientMsgId → receipts
    const awaited = new Map(); // clientMsgId → resolve
    listener.on('receiveMessage', (m) => {
      seen.set(m.clientMsgId, (seen.get(m.clientMsgId) ?? 0) + 1);
      awaited.get(m.clientMsgId)?.();
    });
    /** Resolves once `id` was carried out (its receiveMessage reached the listener). */
    const carriedOut = (id) =>
      seen.has(id) ? Promise.resolve() : withDeadline(new Promise((r) => awaited.set(id, r)), 45_000, `${id} carried out`);
    await listener.connect();
    await listener.joinRoom(room.id);
    for (let i = 0; i < 8; i++) {
      const s = new RoomcastClient({ io, url: cluster.realtimes[i % 2].base, token: alice.token, joinUser: false, socketOptions: { transports: ['websocket'], forceNew: true } });
      senders.push(s);
      await s.connect();
    }

    const acked = [];
    let running = true;
    let n = 0;
    const failures = [];
    let retries = 0;
    const WINDOW = 4; // commands per sender ACKed but not yet carried out
    const loops = senders.slice(1).map(async (s, i) => {
      const mine = [];
      while (running) {
        if (mine.length >= WINDOW) await carriedOut(mine[mine.length - WINDOW]);
        const clientMsgId = `d${i}-${n++}`;
        mine.push(clientMsgId);
        for (let attempt = 0; ; attempt++) {
          try {
            await s.sendMessage(room.id, `burst ${clientMsgId}`, clientMsgId);
            acked.push(clientMsgId);
            break;
          } catch (e) {
            // `internal`: the realtime node's call to the API tier failed
            // (a connection to the stopping node); a client sends it again,
            // with the same clientMsgId.
            if (e.code === 'internal' && attempt < 4) {
              retries++;
              continue;
            }
            running = false;
            failures.push(`${clientMsgId}: ${e.code} ${e.message}`);
            break;
          }
        }
      }
    });
    const logs = () => [...cluster.apis, ...cluster.realtimes].map((p) => p.stderr()).join('\n');
    // Commands flow to both API nodes; stop node 0 in the middle of the stream.
    await until([listener], ['receiveMessage'], () => seen.size >= 100, 30_000, 'the first 100 commands carried out');
    const atStop = acked.length;
    const victim = cluster.apis[0];
    cluster.apiLb.down(victim.internalPort);
    const exit = await victim.stop();
    assert.equal(exit.code, 0, `api node 0 exit after SIGTERM: ${JSON.stringify(exit)}`);
    const t0 = Date.now();
    await until([listener], ['receiveMessage'], () => seen.size >= atStop + 100, 30_000, '100 more commands after the stop');
    running = false;
    await Promise.all(loops);
    assert.deepEqual(failures, [], `every sendMessage ACKed ok\n${logs()}`);

    // Every ACKed command arrives (a command the stopped node never took is redelivered to the other).
    await until([listener], ['receiveMessage'], () => acked.every((id) => seen.has(id)), 45_000, () =>
      `not every ACKed command was carried out: ${acked.filter((id) => !seen.has(id)).length} missing`,
    );
    const allIn = Date.now() - t0;
    const stored = await history(cluster.apis[1].base, alice, room.id);
    const counts = new Map();
    for (const m of stored) counts.set(m.clientMsgId, (counts.get(m.clientMsgId) ?? 0) + 1);
    for (const id of acked) assert.equal(counts.get(id), 1, `${id} stored exactly once`);
    assert.equal(stored.length, acked.length, 'nothing stored that was not ACKed');
    assert.deepEqual([...seen.values()].filter((x) => x !== 1), [], 'each delivered once');
    t.diagnostic(`API drain: ${acked.length} commands ACKed (${atStop} before the SIGTERM), all stored once; the last was carried out ${allIn} ms after node 0 exited; ${retries} sends repeated after an internal ACK`);
  } finally {
    for (const s of senders) s.close();
    await cluster.stop();
  }
});
