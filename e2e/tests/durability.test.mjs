// Durability of `serve`'s group commit: SQLite's writer thread commits the
// posts queued together in one transaction and answers each only after that
// commit. Kill the process with SIGKILL while posts are in flight, start it
// again on the same file: every post that was answered is stored, once, with
// the seq it was answered with; each room's seqs are gap-free; and resending
// every post (answered or not) with its clientMsgId stores each exactly once.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

// Posts as fast as they are answered: limits off (NO_LIMITS).

import { api, createRoom, NO_LIMITS, postMessage, register, startProcess, withDeadline } from '../lib/server.mjs';

const ROOMS = 4;
const PER_ROOM = 150;
const IN_FLIGHT = 32;
/** Answered posts after which the server is killed. */
const KILL_AFTER = 200;

/** Every message of `roomId`, reading forwards page by page. */
async function history(base, token, roomId) {
  const all = [];
  for (let after = 0; ; ) {
    const res = await api(base, 'GET', `/v1/rooms/${roomId}/messages?afterSeq=${after}&limit=200`, token);
    assert.equal(res.status, 200, res.text);
    all.push(...res.json.messages);
    if (res.json.messages.length < 200) return all;
    after = res.json.messages.at(-1).seq;
  }
}

test('posts answered before a SIGKILL are all stored once, in gap-free seqs; resending stores each once', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'roomcast-durability-'));
  const db = `sqlite://${path.join(dir, 'roomcast.db')}`;
  let server = await startProcess(['serve', '--listen', '127.0.0.1:0', '--database-url', db], NO_LIMITS);
  try {
    const { token } = await register(server.base);
    const rooms = [];
    for (let r = 0; r < ROOMS; r++) rooms.push((await createRoom(server.base, token, `durable-${r}`)).id);
    const posts = [];
    for (let i = 0; i < PER_ROOM; i++) {
      for (const roomId of rooms) posts.push({ roomId, clientMsgId: `d-${roomId}-${i}`, body: `m ${i}` });
    }

    // Post with IN_FLIGHT requests at once; kill the server once KILL_AFTER are answered.
    const answered = new Map(); // clientMsgId -> message
    const first = server;
    let next = 0;
    let killed = false;
    const worker = async () => {
      // Every request goes to the first server; none is sent after the kill.
      while (!killed && next < posts.length) {
        const p = posts[next++];
        let res;
        try {
          res = await postMessage(first.base, token, p.roomId, p.body, p.clientMsgId);
        } catch {
          continue; // the connection died with the server: not answered
        }
        if (res.status === 201) answered.set(p.clientMsgId, res.json.message);
        if (!killed && answered.size >= KILL_AFTER) {
          killed = true;
          first.proc.kill('SIGKILL');
        }
      }
    };
    await withDeadline(
      Promise.all(Array.from({ length: IN_FLIGHT }, worker)),
      60_000,
      'posting did not end',
    );
    assert.ok(killed, `the server was killed after ${KILL_AFTER} answered posts`);
    await withDeadline(
      new Promise((resolve) => (server.exited() ? resolve() : server.proc.once('exit', resolve))),
      10_000,
      'the server did not die on SIGKILL',
    );
    const answeredBeforeKill = new Map(answered);

    server = await startProcess(['serve', '--listen', '127.0.0.1:0', '--database-url', db], NO_LIMITS);
    let stored = new Map();
    for (const roomId of rooms) {
      const messages = await history(server.base, token, roomId);
      assert.deepEqual(
        messages.map((m) => m.seq),
        messages.map((_, i) => i + 1),
        `room ${roomId}: seqs are gap-free from 1`,
      );
      for (const m of messages) {
        assert.ok(!stored.has(m.clientMsgId), `${m.clientMsgId} stored once`);
        stored.set(m.clientMsgId, m);
      }
    }
    for (const [clientMsgId, m] of answeredBeforeKill) {
      const s = stored.get(clientMsgId);
      assert.ok(s, `answered post ${clientMsgId} (seq ${m.seq}) survived the SIGKILL`);
      assert.equal(s.id, m.id, `${clientMsgId}: same message`);
      assert.equal(s.seq, m.seq, `${clientMsgId}: same seq`);
    }

    // Resend everything: what was stored answers 200 with the stored message,
    // the rest is stored now, once.
    for (const p of posts) {
      const res = await postMessage(server.base, token, p.roomId, p.body, p.clientMsgId);
      const before = stored.get(p.clientMsgId);
      assert.equal(res.status, before ? 200 : 201, `${p.clientMsgId}: ${res.text}`);
      if (before) assert.equal(res.json.message.id, before.id, `${p.clientMsgId}: the stored message`);
    }
    stored = new Map();
    for (const roomId of rooms) {
      const messages = await history(server.base, token, roomId);
      assert.equal(messages.length, PER_ROOM, `room ${roomId}: every post once`);
      assert.deepEqual(
        messages.map((m) => m.seq),
        messages.map((_, i) => i + 1),
        `room ${roomId}: seqs still gap-free`,
      );
      for (const m of messages) stored.set(m.clientMsgId, m);
    }
    assert.equal(stored.size, posts.length, 'each clientMsgId stored exactly once');
  } finally {
    if (!server.exited()) await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
