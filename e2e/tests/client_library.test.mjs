// The client library (clients/js) on the real socket.io-client: after a drop
// or a server restart it rejoins every room with `sinceEventSeq`, and the
// application sees each room event once, in order — the same as a client
// that never dropped, or as the room's history.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { RoomcastClient, RoomcastError, login, refresh, register } from '../../clients/js/index.js';
import { PASSWORD, api, startProcess, uniqueName, useServer, withDeadline } from '../lib/server.mjs';
import { history, makeRoom, say } from '../lib/chat.mjs';

const ctx = useServer();
const open = [];

/** A library client for a new user, connected; records every room event it hands over. */
async function client(base, { reconnection = true } = {}) {
  const name = uniqueName();
  await register(base, name, PASSWORD);
  const session = await login(base, name, PASSWORD);
  const c = new RoomcastClient({
    io,
    url: base,
    token: session.token,
    socketOptions: { transports: ['websocket'], forceNew: true, reconnection, reconnectionDelay: 50, reconnectionDelayMax: 200 },
  });
  open.push(c);
  c.user = session.user;
  c.seen = [];
  c.waiters = [];
  for (const name of ['receiveMessage', 'messageUpdated', 'messageDeleted', 'reactionAdded', 'reactionRemoved', 'messageReadUpdate']) {
    c.on(name, (p) => {
      c.seen.push([name, p]);
      for (const w of [...c.waiters]) w();
    });
  }
  await c.connect();
  return c;
}

/** Resolve once `c` has handed over an event matching `pred`. */
function handed(c, pred, what, ms = 10_000) {
  const found = () => c.seen.some(([name, p]) => pred(name, p));
  if (found()) return Promise.resolve();
  let done;
  const p = new Promise((resolve) => {
    done = () => {
      if (found()) resolve();
    };
    c.waiters.push(done);
  });
  return withDeadline(p, ms, () => `${what}; seen: ${JSON.stringify(c.seen.map(([n, x]) => [n, x.eventSeq]))}`).finally(
    () => (c.waiters = c.waiters.filter((w) => w !== done)),
  );
}

const once = (emitter, event) =>
  new Promise((resolve) => {
    if (typeof emitter.once === 'function') return emitter.once(event, resolve);
    const off = emitter.on(event, (payload) => {
      off();
      resolve(payload);
    });
  });

describe('the client library', () => {
  test('logs in, joins, and after a dropped connection hands over what was missed once, in order, like a client that never dropped', async () => {
    const alice = await client(ctx.base);
    const bob = await client(ctx.base, { reconnection: false });
    const room = await makeRoom(ctx.base, alice, 'library', [{ user: bob.user }]);
    const ack = await alice.joinRoom(room.id);
    assert.deepEqual([ack.ok, ack.eventSeq], [true, 0]);
    await bob.joinRoom(room.id);
    const m1 = await say(ctx.base, alice, room.id, 'one');
    await handed(bob, (n, p) => p.id === m1.id, 'bob gets m1');

    const gone = once(bob.socket, 'disconnect');
    bob.socket.io.engine.close(); // the network drops
    await gone;
    const m2 = await say(ctx.base, alice, room.id, 'two');
    await say(ctx.base, alice, room.id, 'three');
    await api(ctx.base, 'PATCH', `/v1/rooms/${room.id}/messages/${m2.id}`, alice.token, { body: 'two!' });
    await handed(alice, (n, p) => n === 'messageUpdated', 'alice sees the edit');

    bob.socket.connect(); // back: the library rejoins with sinceEventSeq
    const m5 = await say(ctx.base, alice, room.id, 'five');
    await handed(bob, (n, p) => p.id === m5.id && n === 'receiveMessage', 'bob gets m5');
    await handed(alice, (n, p) => p.id === m5.id && n === 'receiveMessage', 'alice gets m5');
    assert.deepEqual(bob.seen, alice.seen, 'bob handed over exactly what alice did');
    assert.deepEqual(bob.seen.map(([, p]) => p.eventSeq), [1, 2, 3, 4, 5]);
    assert.equal(bob.lastEventSeq(room.id), 5);
  });

  test('a reconnect the server could not recover: the library rejoins with sinceEventSeq and refreshes the room list', async () => {
    const alice = await client(ctx.base);
    const bob = await client(ctx.base, { reconnection: false });
    const room = await makeRoom(ctx.base, alice, 'unrecovered', [{ user: bob.user }]);
    await bob.joinRoom(room.id);
    const m1 = await say(ctx.base, alice, room.id, 'one');
    await handed(bob, (n, p) => p.id === m1.id, 'bob gets m1');

    const gone = once(bob.socket, 'disconnect');
    bob.socket.io.engine.close();
    await gone;
    const m2 = await say(ctx.base, alice, room.id, 'two');
    bob.socket._lastOffset = 'not an offset'; // the server cannot continue this session
    const connected = once(bob, 'connect');
    const rooms = once(bob, 'rooms');
    bob.socket.connect();
    assert.deepEqual(await connected, { recovered: false });
    const list = await withDeadline(rooms, 5000, 'no rooms event');
    const view = list.rooms.find((r) => r.id === room.id);
    assert.equal(view?.unreadCount, 2, 'the room list as of the reconnect');
    await handed(bob, (n, p) => p.id === m2.id, 'bob gets m2, replayed after the rejoin');
    assert.deepEqual(bob.seen.map(([, p]) => p.eventSeq), [1, 2]);
  });

  test('a wrong password is a RoomcastError with the server\'s code', async () => {
    const name = uniqueName();
    await register(ctx.base, name, PASSWORD);
    await assert.rejects(login(ctx.base, name, 'not the password'), (e) => e instanceof RoomcastError && e.code === 'unauthorized');
    const c = await client(ctx.base);
    await assert.rejects(c.joinRoom('not-a-room-id'), (e) => e instanceof RoomcastError && e.code === 'bad_request');
  });

  test('across a restart of the server, clients reconnect by themselves and miss nothing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-restart-'));
    const db = `sqlite://${path.join(dir, 'roomcast.db')}`;
    const first = await startProcess(['serve', '--listen', '127.0.0.1:0', '--database-url', db]);
    let second;
    try {
      const base = first.base;
      const alice = await client(base);
      const bob = await client(base);
      const room = await makeRoom(base, alice, 'restart', [{ user: bob.user }]);
      await alice.joinRoom(room.id);
      await bob.joinRoom(room.id);
      await say(base, alice, room.id, 'before');
      await handed(bob, (n, p) => p.body === 'before', 'bob before the restart');

      const dropped = once(bob.socket, 'disconnect');
      await first.stop();
      await dropped;
      second = await startProcess(['serve', '--listen', `127.0.0.1:${first.port}`, '--database-url', db]);
      for (let i = 1; i <= 3; i++) await say(base, alice, room.id, `during ${i}`);
      const last = await say(base, alice, room.id, 'after');
      for (const c of [alice, bob]) await handed(c, (n, p) => p.id === last.id, 'the last message after the restart');
      const want = (await history(base, alice, room.id)).map((m) => m.seq);
      for (const c of [alice, bob]) {
        assert.deepEqual(c.seen.map(([n, p]) => [n, p.seq]), want.map((s) => ['receiveMessage', s]), 'every message once, in order');
      }
    } finally {
      for (const c of open.splice(0)) c.close();
      if (second) await second.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the client library with short access tokens', () => {
  test('refreshes ahead of expiry, reconnects with the current token, and recovers from a refused one', async () => {
    // Access tokens of 2 s: the client must refresh about every 1.6 s.
    const server = await startProcess(
      ['serve', '--listen', '127.0.0.1:0', '--database-url', 'sqlite::memory:'],
      { ROOMCAST_AUTH__TOKEN_TTL_SECS: '2' },
    );
    try {
      const name = uniqueName('short');
      const first = await register(server.base, name, PASSWORD);
      assert.equal(first.expiresIn, 2);
      const c = new RoomcastClient({
        io,
        url: server.base,
        token: first.token,
        refreshToken: first.refreshToken,
        expiresIn: first.expiresIn,
        socketOptions: { transports: ['websocket'], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 200 },
      });
      open.push(c);
      await c.connect();
      const renewed = () => withDeadline(new Promise((r) => c.on('tokens', r)), 10_000, 'no refresh by the client');
      const one = await renewed();
      const two = await renewed();
      assert.notEqual(one.refreshToken, two.refreshToken, 'rotated each time');
      assert.equal(c.token, two.token);
      // The first refresh token was used up by the client: sending it again is reuse.
      await assert.rejects(refresh(server.base, first.refreshToken), (e) => e.code === 'unauthorized');
      c.close();

      // A client handed a token the server refuses refreshes, then connects.
      const again = await login(server.base, name, PASSWORD);
      const d = new RoomcastClient({
        io,
        url: server.base,
        token: 'not.a.token',
        refreshToken: again.refreshToken,
        expiresIn: again.expiresIn,
        socketOptions: { transports: ['websocket'], forceNew: true, reconnection: false },
      });
      open.push(d);
      await d.connect();
      assert.equal(d.socket.connected, true);
      const me = await api(server.base, 'GET', '/v1/me', d.token);
      assert.equal(me.status, 200, 'the refreshed token serves REST too');
      d.close();
    } finally {
      await server.stop();
    }
  });
});

after(() => {
  for (const c of open.splice(0)) c.close();
});
