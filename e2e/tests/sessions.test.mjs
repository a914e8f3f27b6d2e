// Login sessions on `roomcast serve` (issue #16): refresh rotation and
// reuse over HTTP with real clients, and the sockets of an ended session
// disconnected: by logout, by log out everywhere, and by a reused refresh
// token. (The split deployment: security_cluster.test.mjs.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aRefreshGivesTokensThatConnect, endingASessionDisconnectsItsSockets } from '../lib/sessions.mjs';
import { api, emitWithAck, useServer } from '../lib/server.mjs';

const ctx = useServer();

test('a refresh rotates the tokens; the spent refresh token, sent again, ends the session', async () => {
  const first = await aRefreshGivesTokensThatConnect(ctx.base, ctx.base);
  const again = await api(ctx.base, 'POST', '/v1/auth/refresh', null, { refreshToken: first.refreshToken });
  assert.equal(again.status, 200, 'the current one rotates once more');
  const reuse = await api(ctx.base, 'POST', '/v1/auth/refresh', null, { refreshToken: first.refreshToken });
  assert.equal(reuse.status, 401, reuse.text);
  const after = await api(ctx.base, 'POST', '/v1/auth/refresh', null, { refreshToken: again.json.refreshToken });
  assert.equal(after.status, 401, 'the whole session ended');
});

test('logout disconnects that session\'s sockets, and only those', async () => {
  const { b } = await endingASessionDisconnectsItsSockets(ctx.base, ctx.base, async (base, first) => {
    const res = await api(base, 'POST', '/v1/auth/logout', first.token);
    assert.equal(res.status, 204, res.text);
  });
  const ack = await emitWithAck(b, 'joinUser', {});
  assert.equal(ack.ok, true, 'the other session\'s socket is still served');
  b.close();
});

test('a reused refresh token disconnects the session\'s sockets', async () => {
  const { b } = await endingASessionDisconnectsItsSockets(ctx.base, ctx.base, async (base, first) => {
    const rotated = await api(base, 'POST', '/v1/auth/refresh', null, { refreshToken: first.refreshToken });
    assert.equal(rotated.status, 200, rotated.text);
    const reuse = await api(base, 'POST', '/v1/auth/refresh', null, { refreshToken: first.refreshToken });
    assert.equal(reuse.status, 401, reuse.text);
  });
  b.close();
});
