// The split deployment for end-to-end tests: N × `roomcast api` and
// M × `roomcast realtime` on a fresh PostgreSQL database and a real bus
// (NATS JetStream, Redis Streams or the Pub/Sub emulator), with topic names
// unique to the test so runs never see each other's traffic.
//
// A missing service fails the test with a message naming it and how to start it.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';

import { startProcess, withDeadline } from './server.mjs';
import { balancer } from './tcp.mjs';

const run = promisify(execFile);

export const POSTGRES_URL = process.env.ROOMCAST_TEST_POSTGRES_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

/** How to reach (and start) each backend. */
export const BACKENDS = {
  nats: {
    host: '127.0.0.1',
    port: 4222,
    start:
      'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log',
    env: (id, url = 'nats://127.0.0.1:4222') => ({ ROOMCAST_BUS__KIND: 'nats', ROOMCAST_BUS__NATS__URL: url }),
  },
  redis: {
    host: '127.0.0.1',
    port: 6379,
    start:
      'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
    env: (id, url = 'redis://127.0.0.1:6379') => ({
      ROOMCAST_BUS__KIND: 'redis',
      ROOMCAST_BUS__REDIS__URL: url,
      ROOMCAST_BUS__REDIS__KEY_PREFIX: `e2e-${id}:`,
    }),
  },
  gcp: {
    host: '127.0.0.1',
    port: 8085,
    start: 'scripts/start-pubsub-emulator (then PUBSUB_EMULATOR_HOST=127.0.0.1:8085)',
    env: (id) => ({
      ROOMCAST_BUS__KIND: 'gcp',
      ROOMCAST_BUS__GCP__PROJECT: `e2e-${id}`,
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '127.0.0.1:8085',
    }),
  },
};

/** Resolve if something accepts TCP connections on host:port, else reject naming `what`. */
export function reachable(host, port, what, start) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve();
    });
    sock.once('error', (e) =>
      reject(new Error(`${what} is not reachable on ${host}:${port} (${e.code}). Start it with: ${start}`)),
    );
  });
}

/** A fresh database; returns `{ url, drop() }`. */
export async function freshDatabase() {
  await reachable('127.0.0.1', 5432, 'PostgreSQL', 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start');
  const name = `roomcast_e2e_${randomBytes(5).toString('hex')}`;
  await run('psql', [POSTGRES_URL, '-qc', `CREATE DATABASE ${name}`]);
  const url = POSTGRES_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    async drop() {
      await run('psql', [POSTGRES_URL, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
    },
  };
}

/**
 * Start `apis` × api and `realtimes` × realtime on `backend`. `busUrl` overrides
 * the backend's address (for a private engine). Realtime nodes ask the first
 * API node about membership, or, with `apiBalancer`, a TCP balancer over all
 * API nodes (`apiLb`; needed to restart API nodes: `restartApi`).
 * Returns `{ apis, realtimes, apiLb, stop(), env, … }`.
 */
export async function startCluster({ backend, apis = 2, realtimes = 2, busUrl, extraEnv = {}, apiBalancer = false } = {}) {
  const b = BACKENDS[backend];
  if (!busUrl) await reachable(b.host, b.port, backend, b.start);
  const id = randomBytes(4).toString('hex');
  const db = await freshDatabase();
  const env = {
    ...b.env(id, busUrl),
    ROOMCAST_AUTH__JWT_SECRET: `e2e-secret-${id}`,
    ROOMCAST_INTERNAL__SECRET: `e2e-internal-${id}`,
    ROOMCAST_BUS__CHAT_OUT: `chat.out.${id}`,
    ROOMCAST_BUS__CHAT_IN: `chat.in.${id}`,
    ...extraEnv,
  };
  const started = [];
  try {
    const apiNodes = [];
    for (let i = 0; i < apis; i++) {
      const p = await startProcess(['api', ...apiArgs(), '--database-url', db.url], env);
      started.push(p);
      apiNodes.push(p);
    }
    // The realtime nodes call the API nodes' internal listeners.
    const apiLb = apiBalancer ? await balancer(apiNodes.map((p) => p.internalPort)) : null;
    const rtNodes = [];
    const rtEnv = (i) => ({
      ...env,
      ROOMCAST_REALTIME__API_URL: apiLb ? apiLb.url : apiNodes[0].internalBase,
      ROOMCAST_REALTIME__NODE_ID: `rt-${id}-${i}`,
    });
    for (let i = 0; i < realtimes; i++) {
      const p = await startProcess(['realtime', '--listen', '127.0.0.1:0'], rtEnv(i));
      started.push(p);
      rtNodes.push(p);
    }
    return {
      apis: apiNodes,
      realtimes: rtNodes,
      apiLb,
      env,
      db,
      /**
       * Restart API node `i` as a deploy does: take it out of `apiLb` (if
       * any), SIGTERM (it finishes in-flight requests and stops consuming
       * `chat.in`), wait for its exit (code 0), start it again on the same
       * port, put it back. Resolves to the new process.
       */
      async restartApi(i) {
        const old = apiNodes[i];
        apiLb?.down(old.internalPort);
        const exit = await old.stop();
        if (exit.code !== 0) throw new Error(`api node ${i} exited with ${JSON.stringify(exit)} after SIGTERM\n${old.stderr()}`);
        const p = await startProcess(['api', ...apiArgs(old), '--database-url', db.url], env);
        started.push(p);
        apiNodes[i] = p;
        apiLb?.up(old.internalPort);
        return p;
      },
      /** Stop realtime node `i` (SIGTERM: it drains) and start it again on the same port, same node id. */
      async restartRealtime(i) {
        const old = rtNodes[i];
        await old.stop();
        const p = await startProcess(['realtime', '--listen', `127.0.0.1:${old.port}`], rtEnv(i));
        started.push(p);
        rtNodes[i] = p;
        return p;
      },
      async startApi() {
        const p = await startProcess(['api', ...apiArgs(), '--database-url', db.url], env);
        started.push(p);
        return p;
      },
      /** Stop every process (all of them, even if one fails to stop), drop the database; rethrow the first failure. */
      async stop() {
        apiLb?.close();
        const failures = [];
        for (const p of started) {
          if (!p.exited()) await p.stop().catch((e) => failures.push(e));
        }
        await db.drop();
        if (failures.length) throw failures[0];
      },
    };
  } catch (e) {
    for (const p of started) if (!p.exited()) await p.stop();
    await db.drop();
    throw e;
  }
}

/**
 * A private PostgreSQL (for outage tests) in a directory of its own, on a free port: its own
 * cluster made with `initdb` (trust auth, superuser `root`), run as the
 * `postgres` user (PostgreSQL refuses to run as root). `stop()` is a fast
 * shutdown (SIGINT: clients are disconnected), `start()` starts it again on
 * the same data and port; `remove()` stops it and deletes its directory.
 * Returns `{ url, stop(), start(), remove() }`, started.
 */
export async function privatePostgres() {
  const { readdir, mkdir, mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/roomcast-pg-`);
  const { spawn } = await import('node:child_process');
  const versions = await readdir('/usr/lib/postgresql').catch(() => []);
  if (!versions.length) throw new Error('PostgreSQL binaries not found in /usr/lib/postgresql: apt-get install postgresql');
  const bin = `/usr/lib/postgresql/${versions.sort().pop()}/bin`;
  const passwd = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('postgres:'));
  if (!passwd) throw new Error('no postgres user in /etc/passwd: apt-get install postgresql');
  const [, , uid, gid] = passwd.split(':').map(Number);
  const data = `${dir}/data`;
  await mkdir(data, { recursive: true, mode: 0o700 });
  await run('chown', ['-R', `${uid}:${gid}`, dir]);
  await run(`${bin}/initdb`, ['-D', data, '--auth=trust', '-U', 'root', '-N'], { uid, gid });
  const port = await freePort();
  let child = null;
  const pg = {
    url: `postgres://root@127.0.0.1:${port}/postgres`,
    async start() {
      child = spawn(
        `${bin}/postgres`,
        ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
        { uid, gid, stdio: 'ignore' },
      );
      await withDeadline(waitForPort(port), 20_000, `private PostgreSQL did not start on ${port}`);
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGINT');
      await gone;
    },
    async remove() {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

/**
 * The listen arguments of a `roomcast api` process: the ports of `old` (a
 * restart in place), else free ones; the internal listener is the realtime
 * tier's `realtime.api_url`.
 */
export function apiArgs(old = null) {
  return old
    ? ['--listen', `127.0.0.1:${old.port}`, '--internal-listen', `127.0.0.1:${old.internalPort}`]
    : ['--listen', '127.0.0.1:0', '--internal-listen', '127.0.0.1:0'];
}

/** Start a private engine (for outage tests) on a free port; returns `{ url, stop(), start() }`. */
export async function privateEngine(backend, dir) {
  const port = await freePort();
  const cmd =
    backend === 'nats'
      ? ['/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]]
      : ['/usr/bin/redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'yes', '--dir', dir]];
  const { spawn } = await import('node:child_process');
  let child = null;
  const engine = {
    url: backend === 'nats' ? `nats://127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(cmd[0], cmd[1], { stdio: 'ignore' });
      await withDeadline(waitForPort(port), 20_000, `${backend} did not start on ${port}`);
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    },
  };
  await engine.start();
  return engine;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.once('error', reject);
  });
}

/** Resolve once the port accepts connections (retrying on each refusal, bounded by the caller's deadline). */
function waitForPort(port) {
  return new Promise((resolve) => {
    const attempt = () => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => setTimeout(attempt, 20));
    };
    attempt();
  });
}
