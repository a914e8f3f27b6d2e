// Security across the split deployment (issue #16). The login limits hold across API nodes: in the split
// deployment both API nodes keep the login buckets in PostgreSQL, so
// password guesses spread over the nodes count as one series. The 11th
// wrong password for one account from one address is refused 429, on
// whichever node it lands, while the same account from another address
// still gets its own attempts (no lock-out of the owner), and a realtime
// node refuses a signed token whose user the database does not have. Ending
// a session on one API node disconnects its sockets on the realtime node.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startCluster } from '../lib/cluster.mjs';
import { PASSWORD, api, connect, register, uniqueName } from '../lib/server.mjs';
import { aRefreshGivesTokensThatConnect, endingASessionDisconnectsItsSockets } from '../lib/sessions.mjs';

let cluster;
before(async () => {
  // The test speaks for clients at several addresses through X-Forwarded-For.
  const extraEnv = { ROOMCAST_HTTP__TRUSTED_PROXIES: '["127.0.0.1"]' };
  cluster = await startCluster({ backend: 'nats', apis: 2, realtimes: 1, extraEnv });
});
after(async () => {
  await cluster?.stop();
});

/** A login to API node `i` as if from `ip` (the nodes trust loopback's X-Forwarded-For). */
async function login(i, username, password, ip) {
  const res = await fetch(`${cluster.apis[i].base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ username, password }),
  });
  const json = await res.json().catch(() => null);
  return { status: res.status, json };
}

test('wrong passwords spread over two API nodes share one bucket per account and address', async () => {
  const { user } = await register(cluster.apis[0].base, uniqueName('guess'));
  // login_account_ip: 10 at once. Alternate nodes: the 11th is refused.
  for (let n = 0; n < 10; n++) {
    const res = await login(n % 2, user.username, 'wrong password!', '198.51.100.7');
    assert.equal(res.status, 401, `attempt ${n + 1} on node ${n % 2}: ${JSON.stringify(res.json)}`);
  }
  for (const node of [0, 1]) {
    const res = await login(node, user.username.toUpperCase(), PASSWORD, '198.51.100.7');
    assert.equal(res.status, 429, `node ${node}: ${JSON.stringify(res.json)}`);
    assert.equal(res.json.error.code, 'rate_limited');
    assert.ok(res.json.error.retryAfterMs > 0);
  }
  // The owner, from elsewhere, is not locked out.
  const owner = await login(1, user.username, PASSWORD, '203.0.113.9');
  assert.equal(owner.status, 200, JSON.stringify(owner.json));
});

test('a realtime node refuses a signed token of a user the database does not have', async () => {
  const { token } = await register(cluster.apis[0].base, uniqueName('real'));
  const ok = await connect(cluster.realtimes[0].base, token);
  ok.close();
  // Forge nothing: the same secret signs a token for a user id nobody has.
  const { createHmac, randomUUID } = await import('node:crypto');
  const [header, payload] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.sub = randomUUID();
  const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = createHmac('sha256', cluster.env.ROOMCAST_AUTH__JWT_SECRET).update(body).digest('base64url');
  const err = await connect(cluster.realtimes[0].base, `${body}.${sig}`).then(
    () => assert.fail('a token of nobody connected'),
    (e) => e,
  );
  assert.deepEqual(err.data, { code: 'unknown_user' });
  const me = await api(cluster.apis[1].base, 'GET', '/v1/me', `${body}.${sig}`);
  assert.equal(me.status, 401);
});

test('log out everywhere on one API node disconnects the sessions\' sockets on the realtime node', async () => {
  await aRefreshGivesTokensThatConnect(cluster.apis[1].base, cluster.realtimes[0].base);
  const rt = cluster.realtimes[0].base;
  const { b, second } = await endingASessionDisconnectsItsSockets(cluster.apis[0].base, rt, async (_, first) => {
    const res = await api(cluster.apis[1].base, 'POST', '/v1/auth/logout-all', first.token);
    assert.equal(res.status, 204, res.text);
  });
  // Everywhere: the second session's socket goes too.
  if (b.connected) await new Promise((r) => b.once('disconnect', r));
  const err = await connect(rt, second.token).then(
    () => assert.fail('a session ended by logout-all connected'),
    (e) => e,
  );
  assert.deepEqual(err.data, { code: 'session_ended' });
});
