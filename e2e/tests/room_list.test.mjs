// GET /v1/rooms: RoomViews, latest activity first, cursor paging, limits.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { api, NO_LIMITS, register, useServer } from '../lib/server.mjs';
import { allRooms, call, expectError, makeRoom, say } from '../lib/chat.mjs';

// 120 rooms opened by one user set the pages up: limits off (NO_LIMITS).
const ctx = useServer(NO_LIMITS);

const ids = (rooms) => rooms.map((r) => r.id);

function assertActivityOrder(rooms, what) {
  for (let i = 1; i < rooms.length; i++) {
    assert.ok(
      rooms[i - 1].lastActivityAt >= rooms[i].lastActivityAt,
      `${what}: room ${i - 1} (${rooms[i - 1].lastActivityAt}) before room ${i} (${rooms[i].lastActivityAt})`,
    );
  }
}

describe('room list', () => {
  test('latest activity first; a new message moves its room to the top; each entry is the caller\'s RoomView', async () => {
    const alice = await register(ctx.base);
    const bob = await register(ctx.base);
    const rooms = [];
    for (let i = 0; i < 5; i++) rooms.push(await makeRoom(ctx.base, alice, `r${i}`, [bob]));

    let list = await call(ctx.base, 'GET', '/v1/rooms', alice.token, undefined, 200);
    assert.equal(list.next, null, 'one page: next is null');
    assert.deepEqual(new Set(ids(list.rooms)), new Set(ids(rooms)));
    assertActivityOrder(list.rooms, 'after creation');

    // A message in the oldest room makes it the most recent.
    const m = await say(ctx.base, bob, rooms[0].id, 'bump');
    list = await call(ctx.base, 'GET', '/v1/rooms', alice.token, undefined, 200);
    assert.equal(list.rooms[0].id, rooms[0].id, 'the room with the newest message comes first');
    assertActivityOrder(list.rooms, 'after a message');
    const top = list.rooms[0];
    assert.equal(top.lastSeq, 1);
    assert.equal(top.lastActivityAt, m.createdAt, 'lastActivityAt is the latest message time');
    assert.equal(top.unreadCount, 1, 'bob\'s message is unread for alice');
    assert.equal(top.readSeq, 0);
    assert.equal(top.lastMessage?.id, m.id);
    assert.equal(top.lastMessage?.body, 'bump');
    assert.deepEqual(top.lastMessage?.reactions ?? [], [], 'lastMessage carries no reactions');

    const asBob = await call(ctx.base, 'GET', '/v1/rooms', bob.token, undefined, 200);
    const bobTop = asBob.rooms.find((r) => r.id === rooms[0].id);
    assert.equal(bobTop.unreadCount, 0, 'posting moves the sender\'s read marker');
    assert.equal(bobTop.readSeq, 1);
  });

  test('paging with limit and the `next` cursor visits every room once, in the same order', async () => {
    const alice = await register(ctx.base);
    for (let i = 0; i < 7; i++) await makeRoom(ctx.base, alice, `p${i}`);
    const whole = await call(ctx.base, 'GET', '/v1/rooms?limit=100', alice.token, undefined, 200);
    assert.equal(whole.rooms.length, 7);
    assert.equal(whole.next, null);

    const seen = [];
    let before = null;
    let pages = 0;
    for (; pages < 10; pages++) {
      const q = `?limit=3${before ? `&before=${encodeURIComponent(before)}` : ''}`;
      const page = await call(ctx.base, 'GET', `/v1/rooms${q}`, alice.token, undefined, 200, `page ${pages}`);
      assert.ok(page.rooms.length <= 3, `page ${pages} has ${page.rooms.length} rooms`);
      seen.push(...page.rooms);
      if (page.next === null) break;
      assert.equal(typeof page.next, 'string', JSON.stringify(page));
      before = page.next;
    }
    assert.ok(pages < 10, 'paging ended');
    assert.deepEqual(ids(seen), ids(whole.rooms), 'pages concatenated = the whole list');
    assert.deepEqual(seen, whole.rooms);
  });

  test('default limit 50, cap 100; limit < 1, a non-number limit or a malformed cursor is 400', async () => {
    const alice = await register(ctx.base);
    await Promise.all(Array.from({ length: 101 }, (_, i) => makeRoom(ctx.base, alice, `many ${i}`)));
    const dflt = await call(ctx.base, 'GET', '/v1/rooms', alice.token, undefined, 200);
    assert.equal(dflt.rooms.length, 50, 'default page is 50');
    assert.notEqual(dflt.next, null);
    const capped = await call(ctx.base, 'GET', '/v1/rooms?limit=1000', alice.token, undefined, 200);
    assert.equal(capped.rooms.length, 100, 'limit is capped at 100');
    assert.notEqual(capped.next, null);
    assert.equal((await allRooms(ctx.base, alice, 100)).length, 101);

    expectError(await api(ctx.base, 'GET', '/v1/rooms?limit=0', alice.token), 400, 'bad_request', 'limit=0');
    expectError(await api(ctx.base, 'GET', '/v1/rooms?limit=-1', alice.token), 400, 'bad_request', 'limit=-1');
    expectError(await api(ctx.base, 'GET', '/v1/rooms?limit=abc', alice.token), 400, 'bad_request', 'limit=abc');
    expectError(await api(ctx.base, 'GET', '/v1/rooms?before=garbage', alice.token), 400, 'bad_request', 'bad cursor');
  });

  test('the list holds only the caller\'s rooms', async () => {
    const alice = await register(ctx.base);
    const bob = await register(ctx.base);
    const mine = await makeRoom(ctx.base, alice, 'mine');
    await makeRoom(ctx.base, bob, 'his');
    const shared = await makeRoom(ctx.base, bob, 'ours', [alice]);
    assert.deepEqual(new Set(ids(await allRooms(ctx.base, alice))), new Set([mine.id, shared.id]));
  });
});
