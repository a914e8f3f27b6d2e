// Readiness (issue #16): `GET /readyz` answers 200 only while every
// dependency a process serves with answers, and 503 naming the failing one
// otherwise: the database and the bus on an API node (and `serve`), the bus
// and the API tier on a realtime node. It goes 503 when PostgreSQL, NATS or
// the API tier is stopped and 200 again once it is back. `/healthz` stays a
// liveness check. Real engines, private to this test, stopped for real.
//
// Synchronisation: each wait polls /readyz (an HTTP answer is the signal),
// bounded by a deadline.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { apiArgs, privateEngine, privatePostgres } from '../lib/cluster.mjs';
import { startProcess, startServer, TRANSPORT, withDeadline } from '../lib/server.mjs';

// Not about the transport: runs in the websocket pass only.
const skip = TRANSPORT !== 'websocket' && 'runs in the websocket pass';

async function readyz(base) {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: await res.json() };
}

/** Poll `base`/readyz until it answers `status`; the last answer. */
function until(base, status, what) {
  let last = null;
  return withDeadline(
    (async () => {
      for (;;) {
        last = await readyz(base).catch((e) => ({ status: 0, body: String(e) }));
        if (last.status === status) return last;
      }
    })(),
    30_000,
    () => `${what}: /readyz did not answer ${status}; last ${JSON.stringify(last)}`,
  );
}

test('serve: /readyz is 200 with the database and the bus checked', { skip }, async () => {
  const server = await startServer();
  try {
    const r = await readyz(server.base);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { status: 'ready', checks: { database: 'ok', bus: 'ok' } });
  } finally {
    await server.stop();
  }
});

test('split: /readyz goes 503 naming PostgreSQL, NATS or the API tier while it is stopped, and 200 once it is back', { skip }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-ready-'));
  const procs = [];
  let pg = null;
  let nats = null;
  try {
    pg = await privatePostgres();
    nats = await privateEngine('nats', dir);
    const env = {
      ROOMCAST_AUTH__JWT_SECRET: 'readiness-secret',
      ROOMCAST_INTERNAL__SECRET: 'readiness-internal-secret',
      ROOMCAST_BUS__KIND: 'nats',
      ROOMCAST_BUS__NATS__URL: nats.url,
    };
    let api = await startProcess(['api', ...apiArgs(), '--database-url', pg.url], env);
    procs.push(api);
    const rt = await startProcess(['realtime', '--listen', '127.0.0.1:0'], {
      ...env,
      ROOMCAST_REALTIME__API_URL: api.internalBase,
      ROOMCAST_REALTIME__NODE_ID: 'rt-ready',
    });
    procs.push(rt);

    let r = await until(api.base, 200, 'api, all up');
    assert.deepEqual(r.body.checks, { database: 'ok', bus: 'ok' });
    r = await until(rt.base, 200, 'realtime, all up');
    assert.deepEqual(r.body.checks, { bus: 'ok', api: 'ok' });

    // PostgreSQL stopped: the API node is unready, for the database only,
    // and still alive.
    await pg.stop();
    r = await until(api.base, 503, 'api, PostgreSQL stopped');
    assert.deepEqual(r.body.failing, ['database'], JSON.stringify(r.body));
    assert.equal(r.body.checks.bus, 'ok');
    assert.equal((await fetch(`${api.base}/healthz`)).status, 200, '/healthz stays liveness');
    await pg.start();
    await until(api.base, 200, 'api, PostgreSQL back');

    // NATS stopped: both tiers are unready, for the bus.
    await nats.stop();
    r = await until(api.base, 503, 'api, NATS stopped');
    assert.deepEqual(r.body.failing, ['bus'], JSON.stringify(r.body));
    r = await until(rt.base, 503, 'realtime, NATS stopped');
    assert.ok(r.body.failing.includes('bus'), JSON.stringify(r.body));
    await nats.start();
    await until(api.base, 200, 'api, NATS back');
    await until(rt.base, 200, 'realtime, NATS back');

    // The API tier stopped: the realtime node is unready, for the API.
    const old = api;
    await api.stop();
    r = await until(rt.base, 503, 'realtime, API stopped');
    assert.deepEqual(r.body.failing, ['api'], JSON.stringify(r.body));
    assert.match(r.body.checks.api, /healthz/);
    api = await startProcess(['api', ...apiArgs(old), '--database-url', pg.url], env);
    procs.push(api);
    await until(rt.base, 200, 'realtime, API back');
  } finally {
    for (const p of procs) if (!p.exited()) await p.stop().catch(() => {});
    await nats?.stop();
    await pg?.remove();
    await rm(dir, { recursive: true, force: true });
  }
});
