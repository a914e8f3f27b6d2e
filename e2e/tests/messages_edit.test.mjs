// Editing, deleting and replying: PATCH/DELETE a message, messageUpdated /
// messageDeleted events, who may do what, idempotent repeats, replyTo.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { api, live, useServer } from '../lib/server.mjs';
import { cid, expectError, history, joinRoom, makeRoom, newClient, say } from '../lib/chat.mjs';

const ctx = useServer();
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const msgPath = (roomId, id) => `/v1/rooms/${roomId}/messages/${id}`;
const edit = (who, roomId, id, body) => api(ctx.base, 'PATCH', msgPath(roomId, id), who.token, { body });
const del = (who, roomId, id) => api(ctx.base, 'DELETE', msgPath(roomId, id), who.token);

/** Three users in a room, all joined on their sockets. */
async function setup(name) {
  const alice = await newClient(ctx.base); // owner
  const bob = await newClient(ctx.base); // member
  const carol = await newClient(ctx.base); // member
  const room = await makeRoom(ctx.base, alice, name, [bob, carol]);
  for (const who of [alice, bob, carol]) await joinRoom(who.socket, room.id);
  return { alice, bob, carol, room };
}

describe('editing', () => {
  test('the sender edits: 200 {message} with editedAt; messageUpdated to the room; the same body again changes and sends nothing', async () => {
    const { alice, bob, room } = await setup('edits');
    const m = await say(ctx.base, bob, room.id, 'typo');

    const res = await edit(bob, room.id, m.id, 'fixed');
    assert.equal(res.status, 200, res.text);
    const edited = res.json.message;
    assert.equal(edited.body, 'fixed');
    assert.match(edited.editedAt ?? '', RFC3339);
    for (const k of ['id', 'roomId', 'seq', 'senderId', 'clientMsgId', 'createdAt']) {
      assert.deepEqual(edited[k], m[k], `${k} is kept`);
    }
    assert.deepEqual(live(await alice.tape.waitFor('messageUpdated', (x) => x?.id === m.id, 3000, 'edit event')), edited);

    const mark = alice.tape.mark();
    const again = await edit(bob, room.id, m.id, 'fixed');
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.message, edited, 'same body: unchanged (editedAt too)');
    const sentinel = await say(ctx.base, bob, room.id, 'sentinel');
    await alice.tape.waitFor('receiveMessage', (x) => x?.id === sentinel.id, 3000, 'sentinel', mark);
    assert.deepEqual(alice.tape.since(mark).filter((e) => e.event === 'messageUpdated'), [], alice.tape.describe());

    const h = await history(ctx.base, alice, room.id);
    assert.equal(h[0].body, 'fixed');
    assert.equal(h[0].editedAt, edited.editedAt);
  });

  test('only the sender may edit (another member or the owner: 403); bad bodies 400; unknown or other-room messages 404; deleted 409', async () => {
    const { alice, bob, carol, room } = await setup('edit rules');
    const other = await makeRoom(ctx.base, alice, 'other room');
    const elsewhere = await say(ctx.base, alice, other.id, 'elsewhere');
    const m = await say(ctx.base, bob, room.id, 'original');

    expectError(await edit(carol, room.id, m.id, 'hacked'), 403, 'forbidden', 'another member edits');
    expectError(await edit(alice, room.id, m.id, 'owner edit'), 403, 'forbidden', 'the owner edits someone else\'s message');
    expectError(await edit(bob, room.id, m.id, '  '), 400, 'bad_request', 'blank body');
    expectError(await edit(bob, room.id, m.id, 'x'.repeat(4001)), 400, 'bad_request', 'body too long');
    expectError(await api(ctx.base, 'PATCH', msgPath(room.id, m.id), bob.token, {}), 400, 'bad_request', 'no body');
    expectError(await edit(bob, room.id, randomUUID(), 'x'), 404, 'not_found', 'unknown message');
    expectError(await edit(alice, room.id, elsewhere.id, 'x'), 404, 'not_found', 'message of another room');
    expectError(await edit(bob, room.id, 'nope', 'x'), 400, 'bad_request', 'message id not an id');

    assert.equal((await del(bob, room.id, m.id)).status, 200);
    expectError(await edit(bob, room.id, m.id, 'resurrect'), 409, 'conflict', 'edit a deleted message');

    const h = await history(ctx.base, alice, room.id);
    assert.equal(h.length, 1);
    assert.equal(h[0].body, '');
    assert.equal(h[0].editedAt ?? null, null, 'no edit ever went through');
  });
});

describe('deleting', () => {
  test('the sender deletes: body "", deletedAt set, seq kept; messageDeleted to the room; deleting again changes and sends nothing', async () => {
    const { alice, bob, room } = await setup('deletes');
    const first = await say(ctx.base, bob, room.id, 'keep');
    const m = await say(ctx.base, bob, room.id, 'regret');

    const res = await del(bob, room.id, m.id);
    assert.equal(res.status, 200, res.text);
    const gone = res.json.message;
    assert.equal(gone.id, m.id);
    assert.equal(gone.seq, m.seq);
    assert.equal(gone.body, '');
    assert.match(gone.deletedAt ?? '', RFC3339);
    assert.deepEqual(live(await alice.tape.waitFor('messageDeleted', (x) => x?.id === m.id, 3000, 'delete event')), gone);

    const mark = alice.tape.mark();
    const again = await del(bob, room.id, m.id);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.json.message, gone);
    const sentinel = await say(ctx.base, alice, room.id, 'sentinel');
    await alice.tape.waitFor('receiveMessage', (x) => x?.id === sentinel.id, 3000, 'sentinel', mark);
    assert.deepEqual(alice.tape.since(mark).filter((e) => e.event === 'messageDeleted'), [], alice.tape.describe());

    const h = await history(ctx.base, alice, room.id);
    assert.deepEqual(h.map((x) => [x.seq, x.body, x.deletedAt !== null && x.deletedAt !== undefined]), [
      [first.seq, 'keep', false],
      [m.seq, '', true],
      [sentinel.seq, 'sentinel', false],
    ]);
    assert.deepEqual(h.map((x) => x.seq), [1, 2, 3], 'seqs stay gapless');
  });

  test('the owner and an admin delete anyone\'s message; another member may not (403, nothing changed)', async () => {
    const { alice, bob, carol, room } = await setup('moderation');
    const byBob = await say(ctx.base, bob, room.id, 'bob says');
    const byCarol = await say(ctx.base, carol, room.id, 'carol says');
    const byAlice = await say(ctx.base, alice, room.id, 'alice says');

    expectError(await del(carol, room.id, byBob.id), 403, 'forbidden', 'member deletes another\'s message');
    expectError(await del(bob, room.id, byAlice.id), 403, 'forbidden', 'member deletes the owner\'s message');

    let res = await del(alice, room.id, byBob.id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.message.body, '');
    await bob.tape.waitFor('messageDeleted', (x) => x?.id === byBob.id, 3000, 'bob sees his message deleted');

    assert.equal((await api(ctx.base, 'PUT', `/v1/rooms/${room.id}/members/${carol.user.id}/role`, alice.token, { role: 'admin' })).status, 200);
    res = await del(carol, room.id, byAlice.id);
    assert.equal(res.status, 200, `an admin deletes the owner's message: ${res.text}`);

    const h = await history(ctx.base, bob, room.id);
    assert.deepEqual(h.map((x) => x.body), ['', 'carol says', '']);
    expectError(await del(alice, room.id, randomUUID()), 404, 'not_found', 'unknown message');
    assert.equal(byCarol.seq, 2);
  });

  test('a deleted latest message is the room\'s lastMessage, deleted', async () => {
    const { alice, bob, room } = await setup('last deleted');
    const m = await say(ctx.base, bob, room.id, 'oops');
    assert.equal((await del(bob, room.id, m.id)).status, 200);
    const view = (await api(ctx.base, 'GET', `/v1/rooms/${room.id}`, alice.token)).json.room;
    assert.equal(view.lastMessage?.id, m.id);
    assert.equal(view.lastMessage?.body, '');
    assert.ok(view.lastMessage?.deletedAt, JSON.stringify(view.lastMessage));
    assert.equal(view.lastSeq, 1);
  });
});

describe('replies', () => {
  test('replyTo a message of the room: stored and delivered with replyTo; of another room or unknown: 400, nothing stored', async () => {
    const { alice, bob, room } = await setup('replies');
    const other = await makeRoom(ctx.base, alice, 'elsewhere');
    const foreign = await say(ctx.base, alice, other.id, 'foreign');
    const parent = await say(ctx.base, alice, room.id, 'question?');

    const res = await api(ctx.base, 'POST', `/v1/rooms/${room.id}/messages`, bob.token, {
      clientMsgId: cid(),
      body: 'answer',
      replyTo: parent.id,
    });
    assert.equal(res.status, 201, res.text);
    const reply = res.json.message;
    assert.equal(reply.replyTo, parent.id);
    assert.deepEqual(live(await alice.tape.waitFor('receiveMessage', (x) => x?.id === reply.id, 3000, 'reply delivered')), reply);

    for (const [what, replyTo, status] of [
      ['replyTo of another room', foreign.id, 400],
      ['replyTo unknown', randomUUID(), 400],
      ['replyTo not an id', 'nope', 400],
    ]) {
      const r = await api(ctx.base, 'POST', `/v1/rooms/${room.id}/messages`, bob.token, { clientMsgId: cid(), body: 'x', replyTo });
      expectError(r, status, 'bad_request', what);
    }

    const h = await history(ctx.base, alice, room.id);
    assert.deepEqual(h.map((x) => [x.seq, x.replyTo ?? null]), [
      [1, null],
      [2, parent.id],
    ]);
  });
});
