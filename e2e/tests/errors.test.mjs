// Every HTTP error is `{"error":{"code":"<snake_case>","message":"..."}}`
// with the status that belongs to the code.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { api, createRoom, PASSWORD, register, uniqueName, useServer } from '../lib/server.mjs';

const ctx = useServer();

/** Assert the standard error body with the expected status and code. */
function assertError(res, status, code, what) {
  const where = `${what}: got ${res.status} ${res.text}`;
  assert.equal(res.status, status, where);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${where} (content-type)`);
  assert.ok(res.json && typeof res.json === 'object', `${where} (body is not JSON)`);
  assert.ok(res.json.error && typeof res.json.error === 'object', `${where} (no "error" object)`);
  assert.equal(res.json.error.code, code, where);
  assert.equal(typeof res.json.error.message, 'string', `${where} (message is not a string)`);
  assert.ok(res.json.error.message.length > 0, `${where} (empty message)`);
}

describe('HTTP error shapes', () => {
  let alice;
  let bob;
  let aliceRoom;

  before(async () => {
    alice = await register(ctx.base);
    bob = await register(ctx.base);
    aliceRoom = await createRoom(ctx.base, alice.token, 'alice only', []);
  });

  test('401 unauthorized: GET /v1/me without a token', async () => {
    assertError(await api(ctx.base, 'GET', '/v1/me', null), 401, 'unauthorized', 'GET /v1/me without token');
  });

  test('401 unauthorized: GET /v1/rooms with an invalid token', async () => {
    assertError(await api(ctx.base, 'GET', '/v1/rooms', 'nope'), 401, 'unauthorized', 'GET /v1/rooms bad token');
  });

  test('400 bad_request: malformed JSON on register', async () => {
    const res = await api(ctx.base, 'POST', '/v1/auth/register', null, '{"username": "abc", ');
    assertError(res, 400, 'bad_request', 'register with malformed JSON');
  });

  test('400 bad_request: missing fields on register', async () => {
    const res = await api(ctx.base, 'POST', '/v1/auth/register', null, { username: uniqueName() });
    assertError(res, 400, 'bad_request', 'register without password');
  });

  test('400 bad_request: wrong field types on login', async () => {
    const res = await api(ctx.base, 'POST', '/v1/auth/login', null, { username: 42, password: true });
    assertError(res, 400, 'bad_request', 'login with non-string fields');
  });

  test('400 bad_request: missing fields on post message', async () => {
    const res = await api(ctx.base, 'POST', `/v1/rooms/${aliceRoom.id}/messages`, alice.token, { body: 'hi' });
    assertError(res, 400, 'bad_request', 'post message without clientMsgId');
  });

  test('409 conflict: duplicate username', async () => {
    const res = await api(ctx.base, 'POST', '/v1/auth/register', null, {
      username: alice.user.username,
      password: PASSWORD,
    });
    assertError(res, 409, 'conflict', 'register a taken username');
  });

  test('401 unauthorized: wrong password', async () => {
    const res = await api(ctx.base, 'POST', '/v1/auth/login', null, {
      username: alice.user.username,
      password: 'definitely-wrong',
    });
    assertError(res, 401, 'unauthorized', 'login with a wrong password');
  });

  test('404 not_found: messages of an unknown room', async () => {
    const id = randomUUID();
    assertError(
      await api(ctx.base, 'GET', `/v1/rooms/${id}/messages`, alice.token),
      404,
      'not_found',
      'GET messages of an unknown room',
    );
    assertError(
      await api(ctx.base, 'POST', `/v1/rooms/${id}/messages`, alice.token, { clientMsgId: 'x1', body: 'hi' }),
      404,
      'not_found',
      'POST message to an unknown room',
    );
  });

  test('403 forbidden: a non-member reads or posts messages', async () => {
    assertError(
      await api(ctx.base, 'GET', `/v1/rooms/${aliceRoom.id}/messages`, bob.token),
      403,
      'forbidden',
      'GET messages as a non-member',
    );
    assertError(
      await api(ctx.base, 'POST', `/v1/rooms/${aliceRoom.id}/messages`, bob.token, { clientMsgId: 'x', body: 'hi' }),
      403,
      'forbidden',
      'POST message as a non-member',
    );
  });

  test('400 or 404: a room id that is not a UUID, still in the error shape', async () => {
    const res = await api(ctx.base, 'GET', '/v1/rooms/not-a-uuid/messages', alice.token);
    assert.ok([400, 404].includes(res.status), `expected 400 or 404, got ${res.status} ${res.text}`);
    assertError(res, res.status, res.status === 400 ? 'bad_request' : 'not_found', 'GET messages of /rooms/not-a-uuid');
  });

  test('400 bad_request: creating a room with an unknown member id', async () => {
    const res = await api(ctx.base, 'POST', '/v1/rooms', alice.token, { name: 'x', memberIds: [randomUUID()] });
    assertError(res, 400, 'bad_request', 'create room with unknown member');
  });
});
