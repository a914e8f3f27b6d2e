// Graceful shutdown: SIGTERM closes every socket's transport in a way that
// makes the official client reconnect by itself (a transport close, not an
// "io server disconnect", after which socket.io-client would stay offline),
// then the process exits 0.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { closeAllSockets, connect, register, startServer, withDeadline } from '../lib/server.mjs';

test('SIGTERM disconnects websocket and polling sockets so that clients reconnect, then exits 0', async () => {
  const server = await startServer();
  try {
    const { token } = await register(server.base);
    const sockets = await Promise.all(
      [['websocket'], ['polling']].map((transports) =>
        // Automatic reconnection on, as in a real app.
        connect(server.base, token, { transports, reconnection: true, reconnectionDelay: 60_000 }),
      ),
    );
    const seen = sockets.map(
      (s) => new Promise((resolve) => s.once('disconnect', (reason) => resolve({ reason, willReconnect: s.active }))),
    );

    server.proc.kill('SIGTERM');
    const got = await withDeadline(Promise.all(seen), 10_000, 'sockets were not disconnected on SIGTERM');
    for (const { reason, willReconnect } of got) {
      assert.ok(['transport close', 'transport error'].includes(reason), `disconnect reason ${reason}`);
      assert.equal(willReconnect, true, `socket.io-client plans to reconnect after "${reason}"`);
    }

    const exited = await server.stop();
    assert.equal(exited.code, 0, `exit code (stderr: ${server.stderr()})`);
  } finally {
    closeAllSockets();
    if (!server.exited()) await server.stop();
  }
});

test('SIGTERM drains sockets spread over realtime.drain_window_ms, not all at once', async () => {
  const windowMs = 1500;
  const server = await startServer({ ROOMCAST_REALTIME__DRAIN_WINDOW_MS: String(windowMs) });
  try {
    const { token } = await register(server.base);
    const n = 8;
    const sockets = [];
    for (let i = 0; i < n; i++) {
      sockets.push(await connect(server.base, token, { transports: ['websocket'], reconnection: true, reconnectionDelay: 60_000 }));
    }
    const at = sockets.map((s) => new Promise((resolve) => s.once('disconnect', () => resolve(Date.now()))));
    server.proc.kill('SIGTERM');
    const times = await withDeadline(Promise.all(at), 10_000, 'sockets were not all disconnected on SIGTERM');
    const spread = Math.max(...times) - Math.min(...times);
    // The last of n is scheduled (n-1)/n of the window after the first.
    assert.ok(spread >= (windowMs * (n - 1)) / n - 100, `disconnects spread over ${spread} ms, expected about ${windowMs}`);
    const exited = await server.stop();
    assert.equal(exited.code, 0, `exit code (stderr: ${server.stderr()})`);
  } finally {
    closeAllSockets();
    if (!server.exited()) await server.stop();
  }
});
