// TCP helpers for the scenarios that break connections on purpose (jitter,
// rolling restart, API deploy): splicing an accepted client connection to a
// backend port, and a round-robin balancer whose backends can be taken out.

import net from 'node:net';

/**
 * Pipe the accepted connection `c` both ways to `127.0.0.1:port`, tracking
 * both sockets in `conns` until either side closes or fails (then both go).
 */
export function splice(c, port, conns) {
  const up = net.connect(port, '127.0.0.1');
  const end = () => {
    conns.delete(c);
    conns.delete(up);
    c.destroy();
    up.destroy();
  };
  conns.add(c);
  conns.add(up);
  for (const x of [c, up]) {
    x.on('error', end);
    x.on('close', end);
  }
  c.pipe(up);
  up.pipe(c);
}

/**
 * A TCP proxy on a free loopback port to `127.0.0.1:port`, for one client
 * whose network the test breaks: `cut(ms?)` resets every spliced connection
 * (RST, no clean close) and refuses new ones until `restore()` (or for `ms`);
 * `retarget(port)` sends new connections elsewhere (another node).
 */
export async function cuttableProxy(port) {
  const conns = new Set();
  let down = false;
  let target = port;
  const server = net.createServer((c) => (down ? c.resetAndDestroy() : splice(c, target, conns)));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let timer;
  return {
    port: server.address().port,
    url: `http://127.0.0.1:${server.address().port}`,
    cuts: 0,
    cut(ms) {
      this.cuts++;
      down = true;
      for (const s of conns) s.resetAndDestroy();
      conns.clear();
      clearTimeout(timer);
      if (ms !== undefined) timer = setTimeout(() => (down = false), ms);
    },
    restore() {
      clearTimeout(timer);
      down = false;
    },
    retarget(p) {
      target = p;
    },
    close() {
      clearTimeout(timer);
      for (const s of conns) s.destroy();
      server.close();
    },
  };
}

/**
 * A TCP balancer over `ports` (round robin over those not marked down).
 * `down(port)` sends no new connection there (those open stay); `up(port)`
 * takes it back. Returns `{ url, port, down, up, close }`.
 */
export async function balancer(ports) {
  const down = new Set();
  const conns = new Set();
  let next = 0;
  const server = net.createServer((c) => {
    const alive = ports.filter((p) => !down.has(p));
    if (!alive.length) return c.resetAndDestroy();
    splice(c, alive[next++ % alive.length], conns);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    down: (p) => down.add(p),
    up: (p) => down.delete(p),
    close() {
      for (const x of conns) x.destroy();
      server.close();
    },
  };
}
