// Rate limits and caps at their documented defaults (issue #16,
// docs/security.md "Rate limits"), against `roomcast serve` through the real
// socket.io-client: each refusal is a 429 with Retry-After and
// {"error":{"code":"rate_limited","message","retryAfterMs"}} over HTTP, or the
// ACK {ok:false,error:{code:"rate_limited",message,retryAfterMs}} over the
// socket, and nothing is stored for it; past 20 sockets a user's CONNECT is
// refused with connect_error data {code:"too_many_sockets"}.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  api,
  closeAllSockets,
  connect,
  createRoom,
  emitWithAck,
  Inbox,
  postMessage,
  register,
  uniqueName,
  useServer,
} from '../lib/server.mjs';

const ctx = useServer();

function assertLimited(res, what) {
  assert.equal(res.status, 429, `${what}: ${res.text}`);
  const e = res.json.error;
  assert.equal(e.code, 'rate_limited', what);
  assert.ok(e.message, what);
  assert.ok(Number.isInteger(e.retryAfterMs) && e.retryAfterMs > 0, `${what}: ${res.text}`);
  assert.equal(Number(res.headers.get('retry-after')), Math.ceil(e.retryAfterMs / 1000), `${what}: Retry-After`);
}

test('password guessing backs off after 10 tries for that account: even the right password then waits', async () => {
  const victim = await register(ctx.base);
  const name = victim.user.username;
  for (let i = 0; i < 10; i++) {
    const res = await api(ctx.base, 'POST', '/v1/auth/login', null, { username: name, password: `guess-${i}-xxxxx` });
    assert.equal(res.status, 401, res.text);
  }
  // Now even the right password is refused from this address until the wait.
  const res = await api(ctx.base, 'POST', '/v1/auth/login', null, { username: name, password: victim.password });
  assertLimited(res, 'the 11th login');
  assert.ok(res.json.error.retryAfterMs > 20_000, res.text);
});

test('sendMessage over the socket: 30 at once, then rate_limited with nothing stored', async () => {
  const alice = await register(ctx.base);
  const room = await createRoom(ctx.base, alice.token, 'flood');
  const socket = await connect(ctx.base, alice.token);
  assert.equal((await emitWithAck(socket, 'joinRoom', { roomId: room.id })).ok, true);
  const inbox = new Inbox(socket, 'receiveMessage');
  const acks = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      emitWithAck(socket, 'sendMessage', { roomId: room.id, clientMsgId: `flood-${i}`, body: `m${i}` }),
    ),
  );
  const ok = acks.filter((a) => a.ok);
  const refused = acks.filter((a) => !a.ok);
  assert.ok(ok.length >= 30 && ok.length < 40, `${ok.length} accepted`);
  for (const a of refused) {
    assert.equal(a.error.code, 'rate_limited', JSON.stringify(a));
    assert.ok(a.error.retryAfterMs > 0 && a.error.message, JSON.stringify(a));
  }
  // Every accepted one is stored, no refused one is: once each accepted
  // one has been delivered, the history holds exactly those.
  const accepted = new Set(ok.map((a) => a.clientMsgId));
  await inbox.waitForCount(accepted.size, 10_000);
  const res = await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages?limit=200`, alice.token);
  const stored = res.json.messages.map((m) => m.clientMsgId);
  assert.deepEqual(new Set(stored), accepted);
  socket.close();
});

test('HTTP posts: 30 at once, then 429 with Retry-After, and the refused ones are not stored', async () => {
  const bob = await register(ctx.base);
  const room = await createRoom(ctx.base, bob.token, 'http-flood');
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) => postMessage(ctx.base, bob.token, room.id, `m${i}`, `h-${i}`)),
  );
  const created = answers.filter((r) => r.status === 201);
  const refused = answers.filter((r) => r.status !== 201);
  assert.ok(created.length >= 30 && created.length < 40, `${created.length} created`);
  for (const r of refused) assertLimited(r, 'a post past the limit');
  const res = await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages?limit=200`, bob.token);
  assert.equal(res.json.messages.length, created.length);
});

test('a user\'s 21st socket is refused with connect_error too_many_sockets; closing one lets the next in', async () => {
  const who = await register(ctx.base);
  const sockets = [];
  for (let i = 0; i < 20; i++) sockets.push(await connect(ctx.base, who.token));
  const err = await connect(ctx.base, who.token).then(
    () => assert.fail('the 21st socket connected'),
    (e) => e,
  );
  assert.match(err.message, /too many sockets/);
  assert.deepEqual(err.data, { code: 'too_many_sockets' });
  const gone = new Promise((r) => sockets[0].once('disconnect', r));
  sockets[0].close();
  await gone;
  // The server counts the closed socket out when it sees the close.
  let next = null;
  for (let i = 0; i < 50 && !next; i++) {
    next = await connect(ctx.base, who.token).catch((e) => {
      assert.deepEqual(e.data, { code: 'too_many_sockets' });
      return null;
    });
  }
  assert.ok(next, 'a socket connects once one of the 20 closed');
  closeAllSockets();
});

test('registrations from one address: 30, then 429 and no account', async () => {
  // Earlier tests of this file registered 4 users from this address (and
  // the bucket may have regained one since).
  const names = Array.from({ length: 32 }, () => uniqueName('r'));
  const answers = [];
  for (const username of names) {
    answers.push(await api(ctx.base, 'POST', '/v1/auth/register', null, { username, password: 'correct-horse-battery' }));
  }
  const refusedAt = answers.findIndex((r) => r.status !== 201);
  assert.ok(refusedAt >= 26 && refusedAt <= 27, `first refusal at ${refusedAt}`);
  assertLimited(answers[refusedAt], 'a registration past the limit');
  const login = await api(ctx.base, 'POST', '/v1/auth/login', null, {
    username: names[refusedAt],
    password: 'correct-horse-battery',
  });
  assert.equal(login.status, 401, 'the refused registration made no account');
});
