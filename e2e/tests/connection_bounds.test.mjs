// Every phase of a connection before it is a request in flight or a
// websocket is bounded (issue #16, docs/security.md "Connections"):
// - a request head must arrive within http.header_read_timeout_ms, so
//   unfinished heads and slowloris trickles are closed while other clients
//   are served;
// - a head over http.max_header_bytes is answered 431;
// - a half-open connection holds at most ~max_header_bytes, so RSS stays
//   bounded under 1,000 of them;
// - connections and unauthenticated Engine.IO sessions per address are
//   capped (limits.connections_per_ip, limits.pending_sessions_per_ip),
//   and limits.enabled = false lifts both.
//
// Synchronisation: socket 'close' events and the server's receive queues
// (/proc/net/tcp); timers are failure deadlines only.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';

import { startServer, TRANSPORT, withDeadline } from '../lib/server.mjs';

// Not about the transport: runs in the websocket pass only.
const skip = TRANSPORT !== 'websocket' && 'runs in the websocket pass';

const HEAD_TIMEOUT_MS = 1000;

/** Open a raw TCP connection to `port` from `localAddress`. */
function connect(port, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when `s` is closed (by the other end, or on an error). */
function closedBy(s) {
  return new Promise((resolve) => {
    s.on('error', () => {});
    s.on('data', () => {});
    s.once('close', () => resolve());
  });
}

/** Everything `s` receives until it closes. */
function readAll(s) {
  return new Promise((resolve) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c) => (text += c));
    s.on('error', () => {});
    s.once('close', () => resolve(text));
  });
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

/** Bytes waiting in the server's receive queues of connections to `port`. */
function serverRxQueue(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let waiting = 0;
  let sockets = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !f[1].endsWith(`:${hexPort}`) || f[3] !== '01') continue;
    sockets += 1;
    waiting += parseInt(f[4].split(':')[1], 16);
  }
  return { waiting, sockets };
}

async function get(base, path, headers = {}) {
  const res = await fetch(`${base}${path}`, { headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

test('unfinished heads and slowloris are closed within the head timeout while others are served', { skip }, async () => {
  const server = await startServer({ ROOMCAST_HTTP__HEADER_READ_TIMEOUT_MS: String(HEAD_TIMEOUT_MS) });
  const trickles = [];
  try {
    const t0 = Date.now();
    const conns = [];
    // 50 heads that stop half way, 50 that trickle a byte every 100 ms.
    for (let i = 0; i < 50; i++) {
      const s = await connect(server.port);
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ');
      conns.push(closedBy(s));
    }
    for (let i = 0; i < 50; i++) {
      const s = await connect(server.port);
      s.write('GET /healthz HTTP/1.1\r\n');
      const timer = setInterval(() => s.writable && s.write('X'), 100);
      trickles.push(timer);
      conns.push(closedBy(s).finally(() => clearInterval(timer)));
    }
    // Meanwhile another client is served at once.
    const ok = await get(server.base, '/healthz');
    assert.equal(ok.status, 200, ok.text);
    await withDeadline(Promise.all(conns), HEAD_TIMEOUT_MS * 4, 'the slow connections were not all closed');
    const took = Date.now() - t0;
    assert.ok(took >= HEAD_TIMEOUT_MS * 0.9, `closed after ${took} ms, before the timeout`);
    // An idle keep-alive connection is closed by the same timer.
    const idle = await connect(server.port);
    const idleClosed = closedBy(idle);
    idle.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await withDeadline(idleClosed, HEAD_TIMEOUT_MS * 4, 'an idle keep-alive connection stayed open');
    const after = await get(server.base, '/healthz');
    assert.equal(after.status, 200, after.text);
  } finally {
    trickles.forEach(clearInterval);
    await server.stop();
  }
});

test('a head over max_header_bytes is answered 431', { skip }, async () => {
  const server = await startServer();
  try {
    const big = await get(server.base, '/healthz', { 'x-pad': 'a'.repeat(20 * 1024) });
    assert.equal(big.status, 431);
    const fits = await get(server.base, '/healthz', { 'x-pad': 'a'.repeat(8 * 1024) });
    assert.equal(fits.status, 200, fits.text);
  } finally {
    await server.stop();
  }
});

test('RSS stays bounded under 1,000 half-open connections (at most 32 KiB each)', { skip }, async () => {
  const server = await startServer();
  const sockets = [];
  try {
    // Warm up the allocator and the runtime with a few served requests.
    for (let i = 0; i < 20; i++) assert.equal((await get(server.base, '/healthz')).status, 200);
    const before = rssKiB(server.proc.pid);
    const head = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(15 * 1024)}`;
    // 200 per address, under limits.connections_per_ip (256).
    for (let i = 0; i < 1000; i++) {
      const s = await connect(server.port, `127.0.0.${2 + Math.floor(i / 200)}`);
      s.on('error', () => {});
      s.write(head);
      sockets.push(s);
    }
    // The server has read every byte when its receive queues are empty.
    await withDeadline(
      (async () => {
        for (let i = 0; i < 10_000; i++) {
          const q = serverRxQueue(server.port);
          if (q.sockets >= 1000 && q.waiting === 0) return;
          await new Promise((r) => setImmediate(r));
        }
        throw new Error('receive queues never drained');
      })(),
      8000,
      () => `the server did not read the heads: ${JSON.stringify(serverRxQueue(server.port))}`,
    );
    const perConn = (rssKiB(server.proc.pid) - before) / 1000;
    console.log(`${perConn.toFixed(1)} KiB of RSS per half-open connection (15 KiB heads)`);
    assert.ok(perConn <= 32, `${perConn.toFixed(1)} KiB of RSS per half-open connection`);
    // And it still serves.
    assert.equal((await get(server.base, '/healthz')).status, 200);
  } finally {
    sockets.forEach((s) => s.destroy());
    await server.stop();
  }
});

test('connections and unauthenticated sessions per address are capped; limits.enabled=false lifts the caps', { skip }, async () => {
  const server = await startServer({
    ROOMCAST_LIMITS__CONNECTIONS_PER_IP: '4',
    ROOMCAST_LIMITS__PENDING_SESSIONS_PER_IP: '2',
  });
  const held = [];
  try {
    for (let i = 0; i < 4; i++) held.push(await connect(server.port, '127.0.0.9'));
    const fifth = await connect(server.port, '127.0.0.9');
    const answer = await withDeadline(readAll(fifth), 4000, 'the fifth connection was not closed');
    assert.match(answer, /^HTTP\/1\.1 429/);
    assert.equal(JSON.parse(answer.split('\r\n\r\n')[1]).error.code, 'too_many_connections');
    // Another address is not affected.
    assert.equal((await get(server.base, '/healthz')).status, 200);
    held.forEach((s) => s.destroy());

    // Two polling handshakes that never CONNECT a socket, then a third.
    const hs = () => get(server.base, '/socket.io/?EIO=4&transport=polling');
    assert.equal((await hs()).status, 200);
    assert.equal((await hs()).status, 200);
    const third = await hs();
    assert.equal(third.status, 429, third.text);
    assert.equal(JSON.parse(third.text).error.code, 'too_many_sessions');
    assert.ok(Number(third.headers.get('retry-after')) >= 1);
  } finally {
    held.forEach((s) => s.destroy());
    await server.stop();
  }

  const open = await startServer({
    ROOMCAST_LIMITS__ENABLED: 'false',
    ROOMCAST_LIMITS__CONNECTIONS_PER_IP: '1',
    ROOMCAST_LIMITS__PENDING_SESSIONS_PER_IP: '1',
  });
  try {
    const a = await connect(open.port, '127.0.0.9');
    const b = await connect(open.port, '127.0.0.9');
    for (let i = 0; i < 3; i++) {
      const r = await get(open.base, '/socket.io/?EIO=4&transport=polling');
      assert.equal(r.status, 200, r.text);
    }
    a.destroy();
    b.destroy();
  } finally {
    await open.stop();
  }
});
