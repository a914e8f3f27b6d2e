// History both ways: GET /v1/rooms/{id}/messages with afterSeq (forward) or
// beforeSeq (backward), always ascending; limits.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { api, NO_LIMITS, postMessage, register, useServer } from '../lib/server.mjs';
import { call, expectError, makeRoom } from '../lib/chat.mjs';

// 250 posts by one user set the pages up: limits off (NO_LIMITS), they are not what this tests.
const ctx = useServer(NO_LIMITS);

const seqs = (page) => page.messages.map((m) => m.seq);
const get = (who, roomId, q) => call(ctx.base, 'GET', `/v1/rooms/${roomId}/messages${q}`, who.token, undefined, 200, `history ${q}`);

describe('history paging', () => {
  let alice;
  let bob;
  let room;
  const N = 7;

  before(async () => {
    alice = await register(ctx.base);
    bob = await register(ctx.base);
    room = await makeRoom(ctx.base, alice, 'history', [bob]);
    for (let i = 1; i <= N; i++) {
      const res = await postMessage(ctx.base, i % 2 ? alice.token : bob.token, room.id, `m${i}`);
      assert.equal(res.status, 201, res.text);
    }
  });

  test('forward: afterSeq=N gives the oldest `limit` messages after N, ascending; no query = afterSeq=0', async () => {
    assert.deepEqual(seqs(await get(bob, room.id, '')), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(await get(bob, room.id, ''), await get(bob, room.id, '?afterSeq=0'));
    assert.deepEqual(seqs(await get(bob, room.id, '?afterSeq=2&limit=3')), [3, 4, 5]);
    assert.deepEqual(seqs(await get(bob, room.id, '?afterSeq=5&limit=10')), [6, 7]);
    assert.deepEqual(seqs(await get(bob, room.id, '?afterSeq=7')), []);
    assert.deepEqual(seqs(await get(bob, room.id, '?limit=2')), [1, 2]);
  });

  test('backward: beforeSeq=N gives the newest `limit` messages before N, still ascending', async () => {
    assert.deepEqual(seqs(await get(bob, room.id, '?beforeSeq=6&limit=3')), [3, 4, 5]);
    assert.deepEqual(seqs(await get(bob, room.id, '?beforeSeq=8&limit=2')), [6, 7], 'from the latest');
    assert.deepEqual(seqs(await get(bob, room.id, '?beforeSeq=1000000&limit=3')), [5, 6, 7]);
    assert.deepEqual(seqs(await get(bob, room.id, '?beforeSeq=3&limit=10')), [1, 2]);
    assert.deepEqual(seqs(await get(bob, room.id, '?beforeSeq=1')), []);
    assert.deepEqual(seqs(await get(bob, room.id, '?beforeSeq=8')), [1, 2, 3, 4, 5, 6, 7]);
  });

  test('paging backwards from the latest with beforeSeq = the first seq of the previous page reads the whole room once', async () => {
    const seen = [];
    let beforeSeq = N + 1;
    for (let i = 0; i < 10; i++) {
      const page = await get(bob, room.id, `?beforeSeq=${beforeSeq}&limit=3`);
      if (page.messages.length === 0) break;
      assert.deepEqual(seqs(page), [...seqs(page)].sort((a, b) => a - b), 'each page ascending');
      seen.unshift(...page.messages);
      beforeSeq = page.messages[0].seq;
    }
    assert.deepEqual(seen.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(seen, (await get(bob, room.id, '?afterSeq=0')).messages, 'both directions agree');
  });

  test('afterSeq and beforeSeq together, non-numeric values, limit < 1: 400', async () => {
    for (const q of ['?afterSeq=1&beforeSeq=5', '?afterSeq=abc', '?beforeSeq=abc', '?limit=0', '?limit=-3', '?limit=x']) {
      expectError(await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages${q}`, bob.token), 400, 'bad_request', q);
    }
  });
});

describe('history limits', () => {
  test('default page 50, cap 200', async () => {
    const alice = await register(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'long');
    for (let batch = 0; batch < 21; batch++) {
      const res = await Promise.all(
        Array.from({ length: 10 }, (_, i) => postMessage(ctx.base, alice.token, room.id, `b${batch}-${i}`)),
      );
      for (const r of res) assert.equal(r.status, 201, r.text);
    }
    assert.deepEqual(seqs(await get(alice, room.id, '')), Array.from({ length: 50 }, (_, i) => i + 1), 'default 50, oldest first');
    assert.equal((await get(alice, room.id, '?limit=1000')).messages.length, 200, 'capped at 200');
    const back = await get(alice, room.id, '?beforeSeq=211');
    assert.deepEqual(seqs(back), Array.from({ length: 50 }, (_, i) => 161 + i), 'default 50, newest before 211');
  });
});
