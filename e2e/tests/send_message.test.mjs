// sendMessage over the socket: ACK {ok:true, clientMsgId} once published,
// then receiveMessage with the same clientMsgId; one message per clientMsgId;
// payload checks.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { emitWithAck, live, useServer } from '../lib/server.mjs';
import { ackError, ackOk, cid, history, joinRoom, makeRoom, newClient, roomView, say } from '../lib/chat.mjs';

const ctx = useServer();
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const send = (who, payload) => emitWithAck(who.socket, 'sendMessage', payload);

describe('sendMessage', () => {
  test('ACK {ok:true, clientMsgId}, then receiveMessage with that clientMsgId to every joined socket; roomUpdated to every member', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'live', [bob]);
    await joinRoom(alice.socket, room.id);
    await joinRoom(bob.socket, room.id);

    const ack = ackOk(await send(alice, { roomId: room.id, clientMsgId: 'sock-1', body: 'over the socket' }), 'sendMessage');
    assert.equal(ack.clientMsgId, 'sock-1');

    const mine = await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'sock-1', 3000, 'own message');
    const theirs = await bob.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'sock-1', 3000, 'bob gets it');
    assert.deepEqual(theirs, mine);
    assert.equal(mine.roomId, room.id);
    assert.equal(mine.seq, 1);
    assert.equal(mine.senderId, alice.user.id);
    assert.equal(mine.body, 'over the socket');
    assert.match(mine.createdAt, RFC3339);
    assert.equal(mine.replyTo ?? null, null);
    assert.equal(mine.editedAt ?? null, null);
    assert.equal(mine.deletedAt ?? null, null);
    assert.deepEqual(mine.reactions ?? [], [], 'receiveMessage carries no reactions');

    const va = await alice.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === 1, 3000, 'alice roomUpdated');
    assert.equal(va.unreadCount, 0, 'the sender has read their own message');
    assert.equal(va.readSeq, 1);
    assert.equal(va.lastMessage?.id, mine.id);
    const vb = await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === 1, 3000, 'bob roomUpdated');
    assert.equal(vb.unreadCount, 1);
    assert.equal(vb.readSeq, 0);

    const h = await history(ctx.base, bob, room.id);
    assert.equal(h.length, 1);
    assert.deepEqual({ ...h[0], reactions: [] }, { ...live(mine), reactions: [] });
  });

  test('the same clientMsgId sent twice is one message (both ACKs ok, one receiveMessage, one history entry)', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'retry');
    await joinRoom(alice.socket, room.id);

    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'again', body: 'once' }), 'first');
    const first = await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'again', 3000, 'first copy');
    const ack2 = ackOk(await send(alice, { roomId: room.id, clientMsgId: 'again', body: 'once (retry)' }), 'repeat');
    assert.equal(ack2.clientMsgId, 'again');
    // A distinct later message is the sentinel: chat.in is handled in order.
    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'after', body: 'next' }), 'sentinel');
    const next = await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'after', 3000, 'sentinel');

    assert.equal(next.seq, first.seq + 1, 'the repeat took no seq');
    assert.equal(alice.tape.all('receiveMessage', (m) => m?.clientMsgId === 'again').length, 1, alice.tape.describe());
    const h = await history(ctx.base, alice, room.id);
    assert.deepEqual(h.map((m) => [m.clientMsgId, m.body]), [
      ['again', 'once'],
      ['after', 'next'],
    ]);
  });

  test('a clientMsgId used over REST and then over the socket is still one message', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'mixed');
    await joinRoom(alice.socket, room.id);
    const viaRest = await say(ctx.base, alice, room.id, 'rest first', {});
    ackOk(await send(alice, { roomId: room.id, clientMsgId: viaRest.clientMsgId, body: 'socket retry' }), 'socket repeat');
    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'sentinel', body: 'next' }), 'sentinel');
    await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'sentinel', 3000, 'sentinel');
    assert.equal(alice.tape.all('receiveMessage', (m) => m?.clientMsgId === viaRest.clientMsgId).length, 1, alice.tape.describe());
    assert.equal((await history(ctx.base, alice, room.id)).length, 2);
  });

  test('a sender need not have joined the room; the message reaches those who did', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'not joined', [bob]);
    await joinRoom(bob.socket, room.id);
    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'nj', body: 'from outside the socket room' }), 'send');
    const got = await bob.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'nj', 3000, 'bob receives');
    assert.equal(got.senderId, alice.user.id);
    assert.deepEqual(alice.tape.all('receiveMessage'), [], 'alice did not join, so she gets no receiveMessage');
  });

  test('replyTo over the socket: the message carries it', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'threads');
    await joinRoom(alice.socket, room.id);
    const parent = await say(ctx.base, alice, room.id, 'parent');
    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'child', body: 'child', replyTo: parent.id }), 'reply');
    const child = await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'child', 3000, 'reply');
    assert.equal(child.replyTo, parent.id);
  });

  test('the API refuses a replyTo of another room: ACK ok (it was published) but nothing is stored', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'here');
    const other = await makeRoom(ctx.base, alice, 'there');
    const elsewhere = await say(ctx.base, alice, other.id, 'elsewhere');
    await joinRoom(alice.socket, room.id);
    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'bad-reply', body: 'x', replyTo: elsewhere.id }), 'published');
    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'good', body: 'y' }), 'sentinel');
    const good = await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'good', 3000, 'sentinel');
    assert.equal(good.seq, 1, 'the refused message took no seq');
    assert.deepEqual(alice.tape.all('receiveMessage', (m) => m?.clientMsgId === 'bad-reply'), []);
    assert.deepEqual((await history(ctx.base, alice, room.id)).map((m) => m.clientMsgId), ['good']);
  });

  test('bad payloads are bad_request, unknown rooms not_found; nothing is stored and the socket stays usable', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'validation');
    await joinRoom(alice.socket, room.id);
    const cases = [
      ['no payload', undefined],
      ['a number', 42],
      ['no roomId', { clientMsgId: cid(), body: 'x' }],
      ['roomId not an id', { roomId: 'nope', clientMsgId: cid(), body: 'x' }],
      ['no clientMsgId', { roomId: room.id, body: 'x' }],
      ['empty clientMsgId', { roomId: room.id, clientMsgId: '', body: 'x' }],
      ['clientMsgId of 129 bytes', { roomId: room.id, clientMsgId: 'c'.repeat(129), body: 'x' }],
      ['no body', { roomId: room.id, clientMsgId: cid() }],
      ['blank body', { roomId: room.id, clientMsgId: cid(), body: ' \n ' }],
      ['body of 4001 characters', { roomId: room.id, clientMsgId: cid(), body: 'é'.repeat(4001) }],
      ['body not a string', { roomId: room.id, clientMsgId: cid(), body: 7 }],
      ['replyTo not an id', { roomId: room.id, clientMsgId: cid(), body: 'x', replyTo: 'nope' }],
    ];
    for (const [what, payload] of cases) {
      const ack = payload === undefined ? await send(alice) : await send(alice, payload);
      ackError(ack, 'bad_request', what);
    }
    ackError(await send(alice, { roomId: randomUUID(), clientMsgId: cid(), body: 'x' }), 'not_found', 'unknown room');
    assert.equal(alice.socket.connected, true);

    ackOk(await send(alice, { roomId: room.id, clientMsgId: 'max', body: 'é'.repeat(4000) }), '4000 characters is fine');
    const got = await alice.tape.waitFor('receiveMessage', (m) => m?.clientMsgId === 'max', 3000, 'valid message');
    assert.equal(got.seq, 1, 'nothing before it was stored');
    assert.equal((await roomView(ctx.base, alice, room.id)).lastSeq, 1);
  });
});
