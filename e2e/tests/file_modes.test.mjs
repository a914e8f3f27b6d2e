// The database holds password hashes and every message: `serve` keeps its
// SQLite file, the file's `-wal` and `-shm`, and the generated JWT secret
// readable by their owner only (0600), under the usual umask 022, and
// tightens files an earlier version left 0644 when it starts on them.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { createRoom, postMessage, register, startProcess } from '../lib/server.mjs';

const FILES = ['roomcast.db', 'roomcast.db-wal', 'roomcast.db-shm', 'roomcast.db.secret'];

async function modes(dir) {
  const out = {};
  for (const f of FILES) out[f] = ((await stat(path.join(dir, f))).mode & 0o777).toString(8);
  return out;
}

const ownerOnly = Object.fromEntries(FILES.map((f) => [f, '600']));

/** Start serve on `dir`'s database and write to it (the WAL then exists). */
async function serveAndWrite(dir) {
  const db = `sqlite://${path.join(dir, 'roomcast.db')}`;
  const server = await startProcess(['serve', '--listen', '127.0.0.1:0', '--database-url', db]);
  const { token } = await register(server.base);
  const room = await createRoom(server.base, token, 'modes');
  const res = await postMessage(server.base, token, room.id, 'kept private');
  assert.equal(res.status, 201, res.text);
  return server;
}

test('the database, its -wal and -shm and the secret are 0600 under umask 022, and tightened from 0644', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-modes-'));
  const before = process.umask(0o022);
  let server = null;
  try {
    server = await serveAndWrite(dir);
    assert.deepEqual(await modes(dir), ownerOnly, 'files created by serve');
    await server.stop();
    server = null;

    // As an earlier version left them (SQLite may have removed -wal and
    // -shm when its last connection closed).
    for (const f of FILES) await chmod(path.join(dir, f), 0o644).catch((e) => assert.equal(e.code, 'ENOENT', e.message));
    assert.equal(((await stat(path.join(dir, 'roomcast.db'))).mode & 0o777).toString(8), '644');
    server = await serveAndWrite(dir);
    assert.deepEqual(await modes(dir), ownerOnly, 'files found 0644 at start');
  } finally {
    process.umask(before);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
