// Accounts and authentication: register, login, /v1/me, and the Socket.IO
// handshake's token check.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { api, connect, errorOf, PASSWORD, register, startServer, uniqueName, useServer } from '../lib/server.mjs';

const ctx = useServer();

describe('HTTP auth', () => {
  test('GET /healthz answers 200', async () => {
    const res = await fetch(`${ctx.base}/healthz`);
    await res.arrayBuffer();
    assert.equal(res.status, 200);
  });

  test('register returns 201 with the user and a token that /v1/me accepts', async () => {
    const username = uniqueName();
    const res = await api(ctx.base, 'POST', '/v1/auth/register', null, { username, password: PASSWORD });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.user.username, username);
    assert.equal(typeof res.json.user.id, 'string');
    assert.ok(res.json.user.id.length > 0);
    assert.equal(typeof res.json.token, 'string');
    assert.ok(res.json.token.length > 0);
    assert.equal(res.json.user.password, undefined, 'no password in the user object');
    assert.equal(res.json.user.passwordHash, undefined, 'no password hash in the user object');

    const me = await api(ctx.base, 'GET', '/v1/me', res.json.token);
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json.user, res.json.user);
  });

  test('registering a taken username, in any letter case, is 409 conflict', async () => {
    const username = uniqueName();
    await register(ctx.base, username);
    for (const again of [username, username.toUpperCase()]) {
      const res = await api(ctx.base, 'POST', '/v1/auth/register', null, { username: again, password: PASSWORD });
      assert.equal(res.status, 409, `${again}: ${res.text}`);
      assert.equal(errorOf(res)?.code, 'conflict', res.text);
      assert.equal(typeof errorOf(res).message, 'string');
    }
  });

  test('register rejects an invalid username or a short password with 400 bad_request', async () => {
    const cases = [
      { username: 'ab', password: PASSWORD },
      { username: 'has space', password: PASSWORD },
      { username: 'x'.repeat(33), password: PASSWORD },
      { username: uniqueName(), password: 'short' },
    ];
    for (const body of cases) {
      const res = await api(ctx.base, 'POST', '/v1/auth/register', null, body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(errorOf(res)?.code, 'bad_request', res.text);
    }
  });

  test('login with the right password returns 200 with the user and a working token', async () => {
    const { user, password } = await register(ctx.base);
    const res = await api(ctx.base, 'POST', '/v1/auth/login', null, { username: user.username, password });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.user, user);
    assert.equal(typeof res.json.token, 'string');
    const me = await api(ctx.base, 'GET', '/v1/me', res.json.token);
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json.user, user);
  });

  test('wrong password and unknown user both get 401 with the same body', async () => {
    const { user } = await register(ctx.base);
    const wrong = await api(ctx.base, 'POST', '/v1/auth/login', null, {
      username: user.username,
      password: 'not-the-password',
    });
    const unknown = await api(ctx.base, 'POST', '/v1/auth/login', null, {
      username: uniqueName('nobody'),
      password: 'not-the-password',
    });
    assert.equal(wrong.status, 401, wrong.text);
    assert.equal(unknown.status, 401, unknown.text);
    assert.equal(errorOf(wrong)?.code, 'unauthorized', wrong.text);
    assert.deepEqual(unknown.json, wrong.json, 'the answers must not tell which of the two was wrong');
  });

  test('/v1/me without a token, or with a garbage token, is 401 unauthorized', async () => {
    for (const token of [null, 'garbage', 'eyJhbGciOiJIUzI1NiJ9.e30.invalid-signature']) {
      const res = await api(ctx.base, 'GET', '/v1/me', token);
      assert.equal(res.status, 401, `token ${token}: ${res.text}`);
      assert.equal(errorOf(res)?.code, 'unauthorized', res.text);
    }
  });
});

describe('Socket.IO handshake auth', () => {
  test('connecting without a token fails with a connect_error that mentions the token', async () => {
    await assert.rejects(connect(ctx.base, undefined), (err) => {
      assert.match(String(err.message), /token/i, `connect_error message: ${err.message}`);
      return true;
    });
  });

  test('connecting with a garbage token fails with a connect_error that mentions the token', async () => {
    await assert.rejects(connect(ctx.base, 'garbage-token'), (err) => {
      assert.match(String(err.message), /token/i, `connect_error message: ${err.message}`);
      return true;
    });
  });

  test('connecting with a valid token succeeds', async () => {
    const { token } = await register(ctx.base);
    const socket = await connect(ctx.base, token);
    assert.equal(socket.connected, true);
    socket.close();
  });

  test('a correctly signed token of a user this server does not have is refused: connect_error unknown_user', async () => {
    // Two servers sharing a signing secret but not a database (as after a
    // database reset): a token of the first names nobody on the second.
    const secret = { ROOMCAST_AUTH__JWT_SECRET: `shared-${uniqueName()}` };
    const first = await startServer(secret);
    const second = await startServer(secret);
    try {
      const { token } = await register(first.base);
      const err = await connect(second.base, token).then(
        () => assert.fail('the token of an unknown user connected'),
        (e) => e,
      );
      assert.match(err.message, /does not exist/);
      assert.deepEqual(err.data, { code: 'unknown_user' });
      const me = await api(second.base, 'GET', '/v1/me', token);
      assert.equal(me.status, 401, 'HTTP refuses it too');
      const socket = await connect(first.base, token);
      assert.equal(socket.connected, true, 'its own server admits it');
      socket.close();
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });
});
