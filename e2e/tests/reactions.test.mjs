// Reactions: PUT/DELETE …/reactions/{emoji} → {changed}, reactionAdded /
// reactionRemoved events, counts and `me` in history, limits.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { api, live, useServer } from '../lib/server.mjs';
import { call, expectError, history, joinRoom, makeRoom, newClient, reactionPath, say } from '../lib/chat.mjs';

const ctx = useServer();

const react = (who, roomId, messageId, emoji) => api(ctx.base, 'PUT', reactionPath(roomId, messageId, emoji), who.token);
const unreact = (who, roomId, messageId, emoji) => api(ctx.base, 'DELETE', reactionPath(roomId, messageId, emoji), who.token);

async function reactionsOf(who, roomId, messageId) {
  const h = await history(ctx.base, who, roomId);
  const m = h.find((x) => x.id === messageId);
  assert.ok(m, `message ${messageId} in history`);
  return m.reactions;
}

describe('toggling a reaction', () => {
  test('added then removed: {changed} answers, reactionAdded / reactionRemoved events, counts and `me` in history; repeats change and send nothing', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'reactions', [bob]);
    await joinRoom(alice.socket, room.id);
    const m = await say(ctx.base, alice, room.id, 'react to me');
    const thumbs = '👍';

    // Add.
    let res = await react(bob, room.id, m.id, thumbs);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { changed: true });
    const added = await alice.tape.waitFor('reactionAdded', (e) => e?.messageId === m.id, 3000, 'reactionAdded');
    assert.deepEqual(live(added), { roomId: room.id, messageId: m.id, seq: m.seq, userId: bob.user.id, emoji: thumbs });
    assert.deepEqual(await reactionsOf(bob, room.id, m.id), [{ emoji: thumbs, count: 1, me: true }]);
    assert.deepEqual(await reactionsOf(alice, room.id, m.id), [{ emoji: thumbs, count: 1, me: false }]);

    // Add again: nothing.
    const mark = alice.tape.mark();
    res = await react(bob, room.id, m.id, thumbs);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { changed: false });

    // Remove.
    res = await unreact(bob, room.id, m.id, thumbs);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { changed: true });
    const removed = await alice.tape.waitFor('reactionRemoved', (e) => e?.messageId === m.id, 3000, 'reactionRemoved');
    assert.deepEqual(live(removed), { roomId: room.id, messageId: m.id, seq: m.seq, userId: bob.user.id, emoji: thumbs });
    assert.equal(removed.eventSeq, added.eventSeq + 1, 'the room\'s next event');
    // The repeated add sent nothing: the only reaction event since the mark is the removal.
    assert.deepEqual(
      alice.tape.since(mark).filter((e) => e.event.startsWith('reaction')).map((e) => e.event),
      ['reactionRemoved'],
      alice.tape.describe(),
    );
    assert.deepEqual(await reactionsOf(bob, room.id, m.id), []);
    assert.deepEqual(await reactionsOf(alice, room.id, m.id), []);

    // Remove again: nothing.
    const mark2 = alice.tape.mark();
    res = await unreact(bob, room.id, m.id, thumbs);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { changed: false });
    const sentinel = await say(ctx.base, bob, room.id, 'sentinel');
    await alice.tape.waitFor('receiveMessage', (x) => x?.id === sentinel.id, 3000, 'sentinel', mark2);
    assert.deepEqual(alice.tape.since(mark2).filter((e) => e.event.startsWith('reaction')), [], alice.tape.describe());
  });

  test('several users and emoji: counts per emoji in first-reacted order, `me` per reader', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    const bob = await newClient(ctx.base, { joinUser: false });
    const carol = await newClient(ctx.base, { joinUser: false });
    const room = await makeRoom(ctx.base, alice, 'crowd', [bob, carol]);
    const m = await say(ctx.base, carol, room.id, 'popular');
    const family = '👩‍👩‍👧'; // a ZWJ sequence, URL-encoded in the path
    const heart = '❤️';
    for (const [who, e] of [[bob, heart], [alice, family], [carol, heart], [alice, heart]]) {
      const res = await react(who, room.id, m.id, e);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { changed: true });
    }
    assert.deepEqual(await reactionsOf(alice, room.id, m.id), [
      { emoji: heart, count: 3, me: true },
      { emoji: family, count: 1, me: true },
    ]);
    assert.deepEqual(await reactionsOf(bob, room.id, m.id), [
      { emoji: heart, count: 3, me: true },
      { emoji: family, count: 1, me: false },
    ]);
    assert.deepEqual(await reactionsOf(carol, room.id, m.id), [
      { emoji: heart, count: 3, me: true },
      { emoji: family, count: 1, me: false },
    ]);
  });
});

describe('reaction rules', () => {
  test('not an emoji: 400; unknown message or another room\'s message: 404; deleted message: 409; nothing changed', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    const room = await makeRoom(ctx.base, alice, 'rules');
    const other = await makeRoom(ctx.base, alice, 'other');
    const m = await say(ctx.base, alice, room.id, 'target');
    const foreign = await say(ctx.base, alice, other.id, 'foreign');

    for (const bad of ['smile', ':smile:', 'a👍', '👍 ', '👍'.repeat(17)]) {
      expectError(await react(alice, room.id, m.id, bad), 400, 'bad_request', `emoji ${JSON.stringify(bad)}`);
    }
    expectError(await react(alice, room.id, randomUUID(), '👍'), 404, 'not_found', 'unknown message');
    expectError(await react(alice, room.id, foreign.id, '👍'), 404, 'not_found', 'message of another room');
    expectError(await react(alice, randomUUID(), m.id, '👍'), 404, 'not_found', 'unknown room');
    assert.deepEqual(await reactionsOf(alice, room.id, m.id), []);

    await call(ctx.base, 'DELETE', `/v1/rooms/${room.id}/messages/${m.id}`, alice.token, undefined, 200);
    expectError(await react(alice, room.id, m.id, '👍'), 409, 'conflict', 'react to a deleted message');
    assert.deepEqual(await reactionsOf(alice, room.id, m.id), []);
  });

  test('deleting a message removes its reactions', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    const bob = await newClient(ctx.base, { joinUser: false });
    const room = await makeRoom(ctx.base, alice, 'wipe', [bob]);
    const m = await say(ctx.base, bob, room.id, 'soon gone');
    assert.equal((await react(alice, room.id, m.id, '🎉')).status, 200);
    assert.equal((await reactionsOf(bob, room.id, m.id)).length, 1);
    await call(ctx.base, 'DELETE', `/v1/rooms/${room.id}/messages/${m.id}`, bob.token, undefined, 200);
    assert.deepEqual(await reactionsOf(bob, room.id, m.id), []);
  });

  test('at most 20 distinct emoji per user per message (the 21st is 400)', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    const bob = await newClient(ctx.base, { joinUser: false });
    const room = await makeRoom(ctx.base, alice, 'limit', [bob]);
    const m = await say(ctx.base, alice, room.id, 'many');
    const emoji = [...'😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩'];
    assert.equal(emoji.length, 21);
    for (const e of emoji.slice(0, 20)) {
      const res = await react(alice, room.id, m.id, e);
      assert.equal(res.status, 200, `${e}: ${res.text}`);
    }
    expectError(await react(alice, room.id, m.id, emoji[20]), 400, 'bad_request', 'the 21st emoji');
    // Someone else still may.
    assert.deepEqual((await react(bob, room.id, m.id, emoji[20])).json, { changed: true });
    const mine = await reactionsOf(alice, room.id, m.id);
    assert.equal(mine.filter((r) => r.me).length, 20);
    assert.equal(mine.length, 21);
  });
});
