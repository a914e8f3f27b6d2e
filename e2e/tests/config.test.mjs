// Strict configuration (issue #16, docs/security.md): a key the tree does
// not have is an error at start naming it and the closest valid key, so a
// mistyped setting never silently stays at its default; `roomcast config
// --check FILE` checks a file without starting anything; an unknown
// ROOMCAST_ variable is warned about.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { ROOMCAST_BIN, startServer, TRANSPORT, withDeadline } from '../lib/server.mjs';

// Not about the transport: runs in the websocket pass only.
const skip = TRANSPORT !== 'websocket' && 'runs in the websocket pass';

/** Run roomcast with `args` to its exit; its code and output. */
function run(args, env = {}) {
  return withDeadline(
    new Promise((resolve, reject) => {
      const p = spawn(ROOMCAST_BIN, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (c) => (out += c));
      p.stderr.on('data', (c) => (out += c));
      p.once('error', reject);
      p.once('exit', (code) => resolve({ code, out }));
    }),
    20_000,
    `roomcast ${args.join(' ')} did not exit`,
  );
}

test('an unknown key refuses to start, naming it and the closest key; config --check says the same', { skip }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-config-'));
  try {
    const bad = path.join(dir, 'bad.toml');
    await writeFile(bad, 'listn = "127.0.0.1:0"\n[http]\ndemo_pag = false\n');
    const serve = await run(['serve', '--config', bad, '--database-url', 'sqlite::memory:']);
    assert.notEqual(serve.code, 0, serve.out);
    assert.match(serve.out, /unknown key `listn` in .*bad\.toml; did you mean `listen`\?/);
    assert.match(serve.out, /unknown key `http\.demo_pag` in .*; did you mean `http\.demo_page`\?/);
    assert.doesNotMatch(serve.out, /listening on/);

    const check = await run(['config', '--check', bad]);
    assert.equal(check.code, 1, check.out);
    assert.match(check.out, /did you mean `listen`/);

    const good = path.join(dir, 'good.toml');
    await writeFile(good, 'listen = "127.0.0.1:0"\n[http]\ndemo_page = false\n[bus]\nkind = "nats"\n');
    const ok = await run(['config', '--check', good]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /good\.toml: ok/);

    const kind = path.join(dir, 'kind.toml');
    await writeFile(kind, '[bus]\nkind = "natz"\n');
    const wrong = await run(['config', '--check', kind]);
    assert.equal(wrong.code, 1, wrong.out);
    assert.match(wrong.out, /natz/);
    assert.match(wrong.out, /memory.*nats.*redis.*gcp|nats/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unknown ROOMCAST_ variable is warned about by name, with the closest key', { skip }, async () => {
  const server = await startServer({ ROOMCAST_LIMITS__ENABLD: 'false' });
  try {
    await withDeadline(
      (async () => {
        while (!/limits\.enabld/.test(server.stderr())) await new Promise((r) => server.proc.stderr.once('data', r));
      })(),
      5000,
      () => `no warning on stderr:\n${server.stderr()}`,
    );
    assert.match(server.stderr(), /unknown key `limits\.enabld` in ROOMCAST_LIMITS__ENABLD; did you mean `limits\.enabled`\?/);
  } finally {
    await server.stop();
  }
});
