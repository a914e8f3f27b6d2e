// Login sessions end to end: a socket of a session that ends (logout, log
// out everywhere) is told (`sessionRevoked`) and disconnected, and its
// token is refused at the next CONNECT (`session_ended`), on `serve` and
// on the split deployment alike.

import assert from 'node:assert/strict';
import { PASSWORD, api, connect, register, uniqueName } from './server.mjs';

/** Wait for `event` on `socket` (bounded). */
function next(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/**
 * A user with two sessions, a socket on each (to `socketBase`, HTTP to
 * `apiBase`); ending one with `end(apiBase, first)` disconnects only its
 * socket, which cannot come back.
 */
export async function endingASessionDisconnectsItsSockets(apiBase, socketBase, end) {
  const name = uniqueName('sess');
  const first = await register(apiBase, name);
  const second = await api(apiBase, 'POST', '/v1/auth/login', null, { username: name, password: PASSWORD });
  assert.equal(second.status, 200, second.text);
  const a = await connect(socketBase, first.token);
  const b = await connect(socketBase, second.json.token);
  // `a` listens on its user channel, so it hears which session ended; a
  // socket that did not is disconnected all the same.
  assert.equal((await a.timeout(5000).emitWithAck('joinUser', {})).ok, true);
  const told = next(a, 'sessionRevoked');
  const gone = next(a, 'disconnect');

  await end(apiBase, first, second.json);
  const [revoked] = await told;
  assert.equal(revoked.userId, first.user.id);
  const [reason] = await gone;
  assert.equal(reason, 'io server disconnect');
  const err = await connect(socketBase, first.token).then(
    () => assert.fail("the ended session's token connected again"),
    (e) => e,
  );
  assert.deepEqual(err.data, { code: 'session_ended' });
  return { b, second: second.json };
}

/** The refresh token rotates: the new access token connects, the old refresh token is spent. */
export async function aRefreshGivesTokensThatConnect(apiBase, socketBase) {
  const first = await register(apiBase, uniqueName('ref'));
  const res = await api(apiBase, 'POST', '/v1/auth/refresh', null, { refreshToken: first.refreshToken });
  assert.equal(res.status, 200, res.text);
  assert.notEqual(res.json.refreshToken, first.refreshToken);
  const socket = await connect(socketBase, res.json.token);
  assert.equal(socket.connected, true);
  socket.close();
  return res.json;
}
