// The parts the delivery scenarios share (API deploy, rolling restart,
// jitter on the split deployment): library clients that keep a local model of
// the room, mixed traffic (posts, socket sends, edits, deletions, reactions,
// read markers) against whichever API node is up, and the final-state check.
//
// Timers here only pace traffic (N operations per second) or bound a wait
// for a signal; nothing waits "a moment".

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { io } from 'socket.io-client';

import { RoomcastClient } from '../../clients/js/index.js';
import { history, reactionPath } from './chat.mjs';
import { RoomListModel, RoomModel, restView } from './model.mjs';
import { api as http, withDeadline } from './server.mjs';

/** A fresh clientMsgId. */
const cid = (p = 'c') => `${p}-${randomBytes(8).toString('hex')}`;

/**
 * A RoomcastClient for `who` on `url` with a RoomModel of `roomId` (from
 * eventSeq 0: join before any traffic) and a RoomListModel, joined to the
 * room. The room list is kept from what the library and the server give
 * after a reconnect, nothing else (docs/delivery.md, the user channel): the
 * `rooms` event of a connect that was not recovered (the `joinUser {rooms}`
 * ACK), and the `roomUpdated` snapshot a recovered session gets. Counts its
 * disconnects (`drops`), its recovered reconnects (`recoveries`) and room
 * lists received (`reloads`), and records the seq of each message handed
 * over (`seqs`).
 */
export async function modelClient({ url, who, roomId, socketOptions = {} }) {
  const c = new RoomcastClient({
    io,
    url,
    token: who.token,
    socketOptions: { transports: ['websocket'], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500, ...socketOptions },
  });
  c.who = who;
  c.model = new RoomModel(roomId, 0).follow(c);
  c.list = new RoomListModel().follow(c);
  c.drops = 0;
  c.connects = 0;
  c.recoveries = 0;
  c.reloads = 0;
  c.seqs = [];
  c.on('receiveMessage', (m) => m.roomId === roomId && c.seqs.push(m.seq));
  c.on('disconnect', () => c.drops++);
  c.on('connect', ({ recovered }) => {
    c.connects++;
    if (recovered) c.recoveries++;
  });
  c.on('rooms', ({ rooms }) => {
    c.reloads++;
    for (const v of rooms) c.list.apply(v);
  });
  await c.connect();
  const ack = await c.joinRoom(roomId);
  assert.equal(ack.eventSeq, 0, 'clients join before any traffic');
  return c;
}

/**
 * Call the API on `pick()` (the node to use now); a request that fails
 * without an HTTP answer (the connection closed under it) is sent again to
 * `pick()`, as a load balancer does, at most 5 times. Writes are safe to
 * repeat (clientMsgId, idempotent edits, reactions and markers). Resolves to
 * the answer; `stats.resent` counts the repeats.
 */
export async function callAny(pick, stats, method, path, token, body) {
  for (let i = 0; ; i++) {
    try {
      return await http(pick(), method, path, token, body);
    } catch (e) {
      if (i >= 4) throw new Error(`${method} ${path}: no answer after 5 attempts: ${e.message}`);
      stats.resent++;
    }
  }
}

/**
 * Start mixed traffic in `roomId` until `stop()`:
 * - `poster` posts over REST, `perSec` a second;
 * - each of `senders` (library clients) sends `sendMessage` every
 *   `sendEveryMs` (an `internal` ACK is retried with the same clientMsgId);
 * - `poster` edits one of its messages every 5th tick and deletes one every
 *   20th;
 * - each of `reactors` toggles a reaction on a random message every 3rd tick;
 * - each of `readers` moves its read marker to the latest seq it knows every
 *   4th tick, alternately over REST and over its control client's socket
 *   (`socketFor(reader)`, if any).
 * Every REST answer must be a success. Returns `{ stop(), stats, posted,
 * sent, waitPosted(n) }` (`posted`/`sent`: clientMsgIds accepted).
 */
export function startTraffic({ pick, roomId, poster, perSec = 10, senders = [], sendEveryMs = 1000, reactors = [], readers = [], socketFor = () => null }) {
  const stats = { resent: 0, posts: 0, sends: 0, sendRetries: 0, edits: 0, deletes: 0, reactions: 0, reads: 0 };
  const posted = [];
  const sent = [];
  const mine = []; // poster's messages {id, seq, deleted}
  let latest = 0;
  let running = true;
  const waiters = new Set();
  const call = (...a) => callAny(pick, stats, ...a);
  const ok = (res, what) => assert.ok(res.status >= 200 && res.status < 300, `${what}: ${res.status} ${res.text}`);
  const pace = (ms) => new Promise((r) => setTimeout(r, ms));
  const emojis = ['👍', '🎉', '❤️'];

  const loops = [];
  loops.push((async () => {
    for (let tick = 0; running; tick++) {
      const at = Date.now();
      const clientMsgId = cid('p');
      const res = await call('POST', `/v1/rooms/${roomId}/messages`, poster.token, { clientMsgId, body: `post ${tick}` });
      assert.equal(res.status, 201, `post: ${res.status} ${res.text}`);
      posted.push(clientMsgId);
      mine.push({ id: res.json.message.id, deleted: false });
      latest = Math.max(latest, res.json.message.seq);
      stats.posts++;
      for (const w of [...waiters]) if (posted.length >= w.n) (waiters.delete(w), w.resolve());
      const live = mine.filter((m) => !m.deleted);
      if (tick % 5 === 4 && live.length) {
        const m = live[Math.floor(Math.random() * live.length)];
        ok(await call('PATCH', `/v1/rooms/${roomId}/messages/${m.id}`, poster.token, { body: `edited at ${tick}` }), 'edit');
        stats.edits++;
      }
      if (tick % 20 === 19 && live.length > 1) {
        const m = live[Math.floor(Math.random() * (live.length - 1))];
        ok(await call('DELETE', `/v1/rooms/${roomId}/messages/${m.id}`, poster.token), 'delete');
        m.deleted = true;
        stats.deletes++;
      }
      for (const [i, r] of reactors.entries()) {
        if ((tick + i) % 3 !== 0 || !mine.length) continue;
        const m = mine[Math.floor(Math.random() * mine.length)];
        const emoji = emojis[Math.floor(Math.random() * emojis.length)];
        const method = Math.random() < 0.6 ? 'PUT' : 'DELETE';
        const res = await call(method, reactionPath(roomId, m.id, emoji), r.token);
        // A deleted message may refuse reactions (409): that is an answer, not a failure of the deploy.
        if (res.status !== 409) ok(res, `${method} reaction`);
        stats.reactions++;
      }
      for (const [i, r] of readers.entries()) {
        if ((tick + i) % 4 !== 0 || !latest) continue;
        const seq = Math.max(1, latest - Math.floor(Math.random() * 3));
        const sock = socketFor(r);
        if (sock && tick % 8 < 4 && sock.socket.connected) {
          await sock.markRead(roomId, seq);
        } else {
          ok(await call('POST', `/v1/rooms/${roomId}/read`, r.token, { seq }), 'read');
        }
        stats.reads++;
      }
      await pace(Math.max(0, 1000 / perSec - (Date.now() - at)));
    }
  })());

  for (const s of senders) {
    loops.push((async () => {
      while (running) {
        const at = Date.now();
        const clientMsgId = cid('s');
        for (let attempt = 0; ; attempt++) {
          try {
            await s.sendMessage(roomId, `sent by ${s.who.user.username}`, clientMsgId);
            break;
          } catch (e) {
            // `internal`: the realtime node could not reach the API tier or the bus; send it again.
            if (e.code !== 'internal' || attempt >= 4) throw new Error(`sendMessage ${clientMsgId}: ${e.code} ${e.message}`);
            stats.sendRetries++;
          }
        }
        sent.push(clientMsgId);
        stats.sends++;
        await pace(Math.max(0, sendEveryMs - (Date.now() - at)));
      }
    })());
  }
  // The first failure stops every loop (and is what `stop()` rejects with).
  const done = Promise.all(loops.map((l) => l.catch((e) => {
    running = false;
    throw e;
  })));
  done.catch(() => {}); // surfaced by stop()
  return {
    stats,
    posted,
    sent,
    /** Resolves once `n` posts in all were accepted (a progress signal). */
    waitPosted(n, ms = 30_000) {
      if (posted.length >= n) return Promise.resolve();
      let w;
      const p = new Promise((resolve) => waiters.add((w = { n, resolve })));
      return withDeadline(Promise.race([p, done.then(() => { throw new Error('traffic ended'); })]), ms, `${n} posts accepted`).finally(() => waiters.delete(w));
    },
    /** Stop after the operations in progress; rejects if any failed. */
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Resolve once `pred()` holds, re-checking on each of `events` of every client; fail after `ms`. */
export function until(clients, events, pred, ms, what) {
  return withDeadline(
    new Promise((resolve) => {
      if (pred()) return resolve();
      const offs = [];
      const check = () => {
        if (!pred()) return;
        offs.forEach((off) => off());
        resolve();
      };
      for (const c of clients) for (const e of events) offs.push(c.on(e, check));
    }),
    ms,
    what,
  );
}

/**
 * The final-state check. `controls` maps a user id to that user's control
 * client (never disconnected); every client in `clients` must end with:
 * - no ordering violation in its model (each event once, in eventSeq order);
 * - the seqs of the messages handed over exactly 1..N, in order;
 * - the same messages (edits and deletions applied) and reactions (`me`
 *   for its user) as its control, and as REST history for that user;
 * - the same read receipts as its control;
 * - the same `{lastSeq, readSeq, unreadCount}` of the room as its control
 *   and as `GET /v1/rooms` for that user.
 * `accepted` are clientMsgIds that must each be in history exactly once.
 * Waits (bounded) for every client to reach the room's last event first.
 */
export async function checkFinalState({ base, roomId, clients, controls, accepted = [], ms = 60_000 }) {
  const everyone = [...new Set([...clients, ...controls.values()])];
  const events = ['receiveMessage', 'messageUpdated', 'messageDeleted', 'reactionAdded', 'reactionRemoved', 'messageReadUpdate', 'roomUpdated'];
  // The room's last event, from REST: every client must get there.
  const anyone = [...controls.values()][0].who;
  // Every accepted message stored first: a command a stopping API node took
  // may come back only after the bus's redelivery delay (ack deadline).
  const controlModels = [...controls.values()];
  const storedIds = () => new Set(controlModels.flatMap((c) => [...c.model.messages.values()].map((m) => m.clientMsgId)));
  await until(controlModels, ['receiveMessage'], () => {
    const have = storedIds();
    return accepted.every((id) => have.has(id));
  }, ms, () => `not every accepted message reached the controls: ${accepted.filter((id) => !storedIds().has(id)).join(', ')}`);
  const r = await http(base, 'GET', `/v1/rooms/${roomId}/events?afterEventSeq=0&limit=1`, anyone.token);
  assert.equal(r.status, 200, `events: ${r.status} ${r.text}`);
  const last = r.json.lastEventSeq;
  assert.ok(Number.isInteger(last) && last > 0, `lastEventSeq: ${r.text}`);
  await until(everyone, events, () => everyone.every((c) => c.model.eventSeq >= last), ms, () =>
    `not every client reached eventSeq ${last}: ${everyone.filter((c) => c.model.eventSeq < last).map((c) => c.model.eventSeq).join(',')}`,
  );

  const hist = new Map();
  const listed = new Map();
  for (const [userId, control] of controls) {
    hist.set(userId, restView(await history(base, control.who, roomId)));
    const r = await http(base, 'GET', '/v1/rooms?limit=100', control.who.token);
    assert.equal(r.status, 200, r.text);
    const v = r.json.rooms.find((x) => x.id === roomId);
    listed.set(userId, { lastSeq: v.lastSeq, readSeq: v.readSeq, unreadCount: v.unreadCount });
  }
  // Room views settle on the REST answer (each update comes as an event, or from the reload after a reconnect).
  await until(everyone, events, () => everyone.every((c) => {
    const want = listed.get(c.who.user.id);
    const got = c.list.get(roomId);
    return got && got.lastSeq === want.lastSeq && got.readSeq === want.readSeq;
  }), ms, () => 'not every client\'s room list reached GET /v1/rooms');

  const all = hist.values().next().value;
  const byCid = new Map();
  for (const m of all) byCid.set(m.clientMsgId, (byCid.get(m.clientMsgId) ?? 0) + 1);
  for (const id of accepted) assert.equal(byCid.get(id), 1, `accepted ${id} stored exactly once`);
  assert.deepEqual(all.map((m) => m.seq), all.map((_, i) => i + 1), 'gap-free seqs');

  for (const c of everyone) {
    const u = c.who.user.id;
    const control = controls.get(u);
    assert.deepEqual(c.model.violations, [], 'each event once, in eventSeq order');
    assert.deepEqual(c.seqs, all.map((m) => m.seq), 'every message handed over once, in seq order');
    assert.deepEqual(c.model.view(u), hist.get(u), 'messages, edits, deletions and reactions as REST history says');
    assert.deepEqual(c.model.view(u), control.model.view(u), 'the same messages and reactions as the control');
    assert.deepEqual(c.model.receipts(), control.model.receipts(), 'the same read receipts as the control');
    assert.deepEqual(c.list.get(roomId), listed.get(u), 'the unread count of GET /v1/rooms');
    assert.deepEqual(c.list.get(roomId), control.list.get(roomId), 'the unread count of the control');
  }
  return { messages: all.length, lastEventSeq: last };
}
