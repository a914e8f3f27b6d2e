// Rooms and messages over REST: creation, listing, posting, idempotency and history.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { api, createRoom, postMessage, register, useServer } from '../lib/server.mjs';

const ctx = useServer();

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe('rooms', () => {
  let alice;
  let bob;
  let carol;

  before(async () => {
    alice = await register(ctx.base);
    bob = await register(ctx.base);
    carol = await register(ctx.base);
  });

  test('create returns 201 with the room; the creator is always a member', async () => {
    const res = await api(ctx.base, 'POST', '/v1/rooms', alice.token, { name: 'solo', memberIds: [] });
    assert.equal(res.status, 201, res.text);
    const { room } = res.json;
    assert.equal(typeof room.id, 'string');
    assert.equal(room.name, 'solo');
    assert.deepEqual(room.members, [alice.user.id]);
    assert.equal(room.lastSeq, 0);
    assert.match(room.createdAt, RFC3339);
  });

  test('create with other members lists them all, the creator included', async () => {
    const res = await api(ctx.base, 'POST', '/v1/rooms', alice.token, {
      name: 'trio',
      memberIds: [bob.user.id, carol.user.id],
    });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual([...res.json.room.members].sort(), [alice.user.id, bob.user.id, carol.user.id].sort());
  });

  test('listing the creator among memberIds does not duplicate them', async () => {
    const room = await createRoom(ctx.base, alice.token, 'self-listed', [alice.user.id, bob.user.id]);
    assert.deepEqual([...room.members].sort(), [alice.user.id, bob.user.id].sort());
  });

  test('an unknown member id is 400 bad_request', async () => {
    const res = await api(ctx.base, 'POST', '/v1/rooms', alice.token, { name: 'x', memberIds: [randomUUID()] });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json?.error?.code, 'bad_request', res.text);
  });

  test('GET /v1/rooms lists only the caller\'s rooms', async () => {
    const mine = await createRoom(ctx.base, alice.token, 'alice private', []);
    const bobsOnly = await createRoom(ctx.base, bob.token, 'bob private', []);
    const shared = await createRoom(ctx.base, bob.token, 'bob with alice', [alice.user.id]);

    const res = await api(ctx.base, 'GET', '/v1/rooms', alice.token);
    assert.equal(res.status, 200, res.text);
    assert.ok(Array.isArray(res.json.rooms), res.text);
    const ids = res.json.rooms.map((r) => r.id);
    assert.ok(ids.includes(mine.id), 'own room listed');
    assert.ok(ids.includes(shared.id), 'room created by someone else with the caller in it listed');
    assert.ok(!ids.includes(bobsOnly.id), 'someone else\'s private room not listed');
    for (const r of res.json.rooms) {
      assert.ok(r.members.includes(alice.user.id), `listed room ${r.id} has the caller as a member`);
    }
    assert.deepEqual(
      res.json.rooms.find((r) => r.id === mine.id),
      mine,
      'listed room equals the created room',
    );
  });
});

describe('messages', () => {
  let alice;
  let bob;
  let room;

  before(async () => {
    alice = await register(ctx.base);
    bob = await register(ctx.base);
    room = await createRoom(ctx.base, alice.token, 'chat', [bob.user.id]);
  });

  test('post returns 201 with the stored message', async () => {
    const res = await postMessage(ctx.base, alice.token, room.id, 'hello bob', 'm-first');
    assert.equal(res.status, 201, res.text);
    const m = res.json.message;
    assert.equal(typeof m.id, 'string');
    assert.equal(m.roomId, room.id);
    assert.equal(m.seq, 1);
    assert.equal(m.senderId, alice.user.id);
    assert.equal(m.body, 'hello bob');
    assert.equal(m.clientMsgId, 'm-first');
    assert.match(m.createdAt, RFC3339);
  });

  test('the same clientMsgId again from the same sender is 200 with the same message', async () => {
    const first = await postMessage(ctx.base, alice.token, room.id, 'once', 'm-idem');
    assert.equal(first.status, 201, first.text);
    const again = await postMessage(ctx.base, alice.token, room.id, 'once', 'm-idem');
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.message, first.json.message);
  });

  test('two concurrent posts with one clientMsgId store one message (one 201, one 200)', async () => {
    const [a, b] = await Promise.all([
      postMessage(ctx.base, alice.token, room.id, 'racy', 'm-race'),
      postMessage(ctx.base, alice.token, room.id, 'racy', 'm-race'),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 201], `${a.status} ${a.text} / ${b.status} ${b.text}`);
    assert.deepEqual(a.json.message, b.json.message);
    const hist = await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages?afterSeq=0&limit=200`, alice.token);
    assert.equal(hist.json.messages.filter((m) => m.clientMsgId === 'm-race').length, 1);
  });

  test('the same clientMsgId from a different sender is a new message', async () => {
    const a = await postMessage(ctx.base, alice.token, room.id, 'from alice', 'm-shared-key');
    const b = await postMessage(ctx.base, bob.token, room.id, 'from bob', 'm-shared-key');
    assert.equal(a.status, 201, a.text);
    assert.equal(b.status, 201, b.text);
    assert.notEqual(b.json.message.id, a.json.message.id);
    assert.equal(b.json.message.senderId, bob.user.id);
    assert.equal(b.json.message.body, 'from bob');
  });

  test('history is ascending by seq and honours afterSeq and limit', async () => {
    const r = await createRoom(ctx.base, alice.token, 'history', [bob.user.id]);
    const posted = [];
    for (let i = 1; i <= 5; i++) {
      const res = await postMessage(ctx.base, i % 2 ? alice.token : bob.token, r.id, `msg ${i}`);
      assert.equal(res.status, 201, res.text);
      posted.push(res.json.message);
    }
    assert.deepEqual(posted.map((m) => m.seq), [1, 2, 3, 4, 5]);

    const all = await api(ctx.base, 'GET', `/v1/rooms/${r.id}/messages?afterSeq=0&limit=200`, bob.token);
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json.messages, posted);

    const page = await api(ctx.base, 'GET', `/v1/rooms/${r.id}/messages?afterSeq=2&limit=2`, bob.token);
    assert.equal(page.status, 200, page.text);
    assert.deepEqual(page.json.messages, posted.slice(2, 4));

    const tail = await api(ctx.base, 'GET', `/v1/rooms/${r.id}/messages?afterSeq=5&limit=10`, alice.token);
    assert.equal(tail.status, 200, tail.text);
    assert.deepEqual(tail.json.messages, []);

    const listed = await api(ctx.base, 'GET', '/v1/rooms', alice.token);
    assert.equal(listed.json.rooms.find((x) => x.id === r.id)?.lastSeq, 5, 'room.lastSeq follows the messages');
  });

  test('a non-member gets 403 forbidden, an unknown room 404 not_found', async () => {
    const outsider = await register(ctx.base);
    const read = await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages`, outsider.token);
    assert.equal(read.status, 403, read.text);
    assert.equal(read.json?.error?.code, 'forbidden');
    const write = await postMessage(ctx.base, outsider.token, room.id, 'let me in');
    assert.equal(write.status, 403, write.text);
    assert.equal(write.json?.error?.code, 'forbidden');

    const unknown = await postMessage(ctx.base, alice.token, randomUUID(), 'anyone?');
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json?.error?.code, 'not_found');
  });

  test('an empty body is 400 bad_request', async () => {
    const res = await postMessage(ctx.base, alice.token, room.id, '   ');
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json?.error?.code, 'bad_request');
  });
});
