// Socket.IO: joinRoom / joinUser ACKs, delivery of REST-posted messages as
// `receiveMessage`, isolation between rooms, transports, and bad payloads.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import {
  api,
  connect,
  createRoom,
  emitWithAck,
  Inbox,
  live,
  postMessage,
  register,
  useServer,
  withDeadline,
} from '../lib/server.mjs';

const ctx = useServer();

/** Post over REST, assert 201, return the stored message. */
async function post(token, roomId, body, clientMsgId) {
  const res = await postMessage(ctx.base, token, roomId, body, clientMsgId);
  assert.equal(res.status, 201, `post to ${roomId}: ${res.text}`);
  return res.json.message;
}

/** joinRoom and assert the ACK is `{ok:true, seq}`; returns the ACK. */
async function join(socket, roomId) {
  const ack = await emitWithAck(socket, 'joinRoom', { roomId });
  assert.equal(ack?.ok, true, `joinRoom ${roomId}: ${JSON.stringify(ack)}`);
  return ack;
}

const byId = (id) => (m) => m && m.id === id;

describe('joinRoom and receiveMessage', () => {
  let alice;
  let bob;

  before(async () => {
    alice = await register(ctx.base);
    bob = await register(ctx.base);
  });

  test('a member joined to a room of one receives a REST-posted message within 2 s, equal to the REST answer', async () => {
    const room = await createRoom(ctx.base, alice.token, 'alice alone', []);
    const socket = await connect(ctx.base, alice.token);
    const inbox = new Inbox(socket, 'receiveMessage');
    const ack = await join(socket, room.id);
    assert.equal(ack.seq, 0, `empty room joins at seq 0: ${JSON.stringify(ack)}`);

    const sent = await post(alice.token, room.id, 'hello me');
    const got = await inbox.waitFor(byId(sent.id), 2000, `message ${sent.id}`);
    assert.deepEqual(live(got), sent);
    socket.close();
  });

  test('both members of a shared room receive each other\'s messages', async () => {
    const room = await createRoom(ctx.base, alice.token, 'alice and bob', [bob.user.id]);
    const sa = await connect(ctx.base, alice.token);
    const sb = await connect(ctx.base, bob.token);
    const ia = new Inbox(sa, 'receiveMessage');
    const ib = new Inbox(sb, 'receiveMessage');
    await join(sa, room.id);
    await join(sb, room.id);

    const fromAlice = await post(alice.token, room.id, 'hi bob');
    assert.deepEqual(live(await ib.waitFor(byId(fromAlice.id), 2000, 'alice→bob')), fromAlice);
    assert.deepEqual(live(await ia.waitFor(byId(fromAlice.id), 2000, 'alice→alice')), fromAlice);

    const fromBob = await post(bob.token, room.id, 'hi alice');
    assert.deepEqual(live(await ia.waitFor(byId(fromBob.id), 2000, 'bob→alice')), fromBob);
    assert.deepEqual(live(await ib.waitFor(byId(fromBob.id), 2000, 'bob→bob')), fromBob);

    assert.equal(ia.items.length, 2, JSON.stringify(ia.items));
    assert.equal(ib.items.length, 2, JSON.stringify(ib.items));
    sa.close();
    sb.close();
  });

  test('a non-member cannot join a private room and receives nothing from it', async () => {
    const privateRoom = await createRoom(ctx.base, alice.token, 'alice private', []);
    // A room both are in, used as a barrier for bob's socket.
    const shared = await createRoom(ctx.base, alice.token, 'barrier', [bob.user.id]);

    const sa = await connect(ctx.base, alice.token);
    const sb = await connect(ctx.base, bob.token);
    const ia = new Inbox(sa, 'receiveMessage');
    const ib = new Inbox(sb, 'receiveMessage');
    await join(sa, privateRoom.id);

    const denied = await emitWithAck(sb, 'joinRoom', { roomId: privateRoom.id });
    assert.equal(denied?.ok, false, JSON.stringify(denied));
    assert.equal(denied?.error?.code, 'forbidden', JSON.stringify(denied));
    assert.equal(typeof denied?.error?.message, 'string');
    // Claiming to be alice in the payload changes nothing: identity is the token's.
    const spoofed = await emitWithAck(sb, 'joinRoom', { roomId: privateRoom.id, userId: alice.user.id });
    assert.equal(spoofed?.error?.code, 'forbidden', JSON.stringify(spoofed));
    assert.equal(sb.connected, true, 'a refused join does not disconnect');

    const first = await post(alice.token, privateRoom.id, 'secret 1');
    await ia.waitFor(byId(first.id), 2000, 'secret 1 to alice');
    const second = await post(alice.token, privateRoom.id, 'secret 2');
    await ia.waitFor(byId(second.id), 2000, 'secret 2 to alice');

    // Barrier for bob: a later message in a room he did join must reach him.
    await join(sb, shared.id);
    const later = await post(alice.token, shared.id, 'after the secrets');
    await ib.waitFor(byId(later.id), 2000, 'barrier message to bob');

    const leaked = ib.items.filter((m) => m?.roomId === privateRoom.id);
    assert.deepEqual(leaked, [], 'bob received messages of a room he is not a member of');
    assert.deepEqual(ib.items.map((m) => live(m)), [later]);
    sa.close();
    sb.close();
  });

  test('joinRoom ACKs the room\'s latest seq', async () => {
    const room = await createRoom(ctx.base, alice.token, 'with history', []);
    await post(alice.token, room.id, 'one');
    const two = await post(alice.token, room.id, 'two');
    const socket = await connect(ctx.base, alice.token);
    const ack = await emitWithAck(socket, 'joinRoom', { roomId: room.id });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    assert.equal(ack.seq, two.seq, JSON.stringify(ack));
    assert.equal(ack.seq, 2);
    socket.close();
  });

  test('joinRoom for an unknown room is {ok:false, error:{code:"not_found"}}', async () => {
    const socket = await connect(ctx.base, alice.token);
    const ack = await emitWithAck(socket, 'joinRoom', { roomId: randomUUID() });
    assert.equal(ack?.ok, false, JSON.stringify(ack));
    assert.equal(ack?.error?.code, 'not_found', JSON.stringify(ack));
    assert.equal(typeof ack?.error?.message, 'string');
    socket.close();
  });

  test('the same clientMsgId posted twice is delivered exactly once', async () => {
    const room = await createRoom(ctx.base, alice.token, 'idempotent', []);
    const socket = await connect(ctx.base, alice.token);
    const inbox = new Inbox(socket, 'receiveMessage');
    await join(socket, room.id);

    const first = await postMessage(ctx.base, alice.token, room.id, 'only once', 'dup-key');
    assert.equal(first.status, 201, first.text);
    const second = await postMessage(ctx.base, alice.token, room.id, 'only once', 'dup-key');
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.json.message, first.json.message);

    // A later, distinct message is the signal that anything earlier has been delivered.
    const next = await post(alice.token, room.id, 'next', 'other-key');
    await inbox.waitFor(byId(next.id), 2000, 'the later distinct message');

    const copies = inbox.items.filter((m) => m?.clientMsgId === 'dup-key');
    assert.equal(copies.length, 1, `dup-key delivered ${copies.length} times`);
    assert.deepEqual(live(copies[0]), first.json.message);
    assert.deepEqual(inbox.items.map((m) => m.seq), [1, 2]);
    socket.close();
  });
});

describe('transports', () => {
  let alice;
  let room;

  before(async () => {
    alice = await register(ctx.base);
    room = await createRoom(ctx.base, alice.token, 'transports', []);
  });

  for (const transports of [['polling'], ['websocket']]) {
    test(`join + receive over ${transports[0]} only`, async () => {
      const socket = await connect(ctx.base, alice.token, { transports });
      assert.equal(socket.io.engine.transport.name, transports[0]);
      const inbox = new Inbox(socket, 'receiveMessage');
      await join(socket, room.id);
      const sent = await post(alice.token, room.id, `via ${transports[0]}`);
      assert.deepEqual(live(await inbox.waitFor(byId(sent.id), 2000, `message over ${transports[0]}`)), sent);
      assert.equal(socket.io.engine.transport.name, transports[0]);
      socket.close();
    });
  }

  test('join + receive with the default transports (polling, upgraded to websocket)', async () => {
    const socket = await connect(ctx.base, alice.token, { transports: ['polling', 'websocket'] });
    const upgraded = new Promise((resolve) => socket.io.engine.once('upgrade', resolve));
    const inbox = new Inbox(socket, 'receiveMessage');
    // Join while the connection may still be on polling...
    await join(socket, room.id);
    // ...then wait for the upgrade and receive over websocket.
    if (socket.io.engine.transport.name !== 'websocket') {
      await withDeadline(upgraded, 5000, 'engine.io upgrade to websocket');
    }
    assert.equal(socket.io.engine.transport.name, 'websocket');
    const sent = await post(alice.token, room.id, 'after upgrade');
    assert.deepEqual(live(await inbox.waitFor(byId(sent.id), 2000, 'message after upgrade')), sent);
    socket.close();
  });
});

describe('joinUser and roomUpdated', () => {
  test('joinUser ACKs {ok:true}; a room created by someone else with you in it arrives as roomUpdated', async () => {
    const alice = await register(ctx.base);
    const bob = await register(ctx.base);
    const carol = await register(ctx.base);

    const sa = await connect(ctx.base, alice.token);
    const sc = await connect(ctx.base, carol.token);
    const ia = new Inbox(sa, 'roomUpdated');
    const ic = new Inbox(sc, 'roomUpdated');
    for (const s of [sa, sc]) {
      const ack = await emitWithAck(s, 'joinUser', {});
      assert.equal(ack?.ok, true, `joinUser ACK: ${JSON.stringify(ack)}`);
    }

    const forAlice = await createRoom(ctx.base, bob.token, 'bob invites alice', [alice.user.id]);
    assert.deepEqual(await ia.waitFor((r) => r?.id === forAlice.id, 2000, 'room bob created with alice'), forAlice);

    // Barrier for carol: a later room that includes her must arrive; the earlier one must not have.
    const forCarol = await createRoom(ctx.base, bob.token, 'bob invites carol', [carol.user.id]);
    assert.deepEqual(await ic.waitFor((r) => r?.id === forCarol.id, 2000, 'room bob created with carol'), forCarol);
    assert.deepEqual(ic.items.map((r) => r.id), [forCarol.id], 'carol only hears about rooms she is in');

    // Alice's room list agrees with what she was told.
    const list = await api(ctx.base, 'GET', '/v1/rooms', alice.token);
    assert.ok(list.json.rooms.some((r) => r.id === forAlice.id));
    sa.close();
    sc.close();
  });
});

describe('joinRoom with malformed payloads', () => {
  let alice;
  let room;

  before(async () => {
    alice = await register(ctx.base);
    room = await createRoom(ctx.base, alice.token, 'payloads', []);
  });

  const cases = [
    ['an object without roomId', {}],
    ['a roomId that is not a UUID', { roomId: 'not-a-uuid' }],
    ['a number instead of an object', 42],
    ['a roomId that is a number', { roomId: 12345 }],
  ];

  for (const [what, payload] of cases) {
    test(`${what} → {ok:false, error:{code:"bad_request"}}, and the socket stays usable`, async () => {
      const socket = await connect(ctx.base, alice.token);
      const ack = await emitWithAck(socket, 'joinRoom', payload);
      assert.equal(ack?.ok, false, JSON.stringify(ack));
      assert.equal(ack?.error?.code, 'bad_request', JSON.stringify(ack));
      assert.equal(typeof ack?.error?.message, 'string');
      assert.equal(socket.connected, true, 'socket still connected after a bad payload');

      const inbox = new Inbox(socket, 'receiveMessage');
      await join(socket, room.id);
      const sent = await post(alice.token, room.id, `after ${what}`);
      assert.deepEqual(live(await inbox.waitFor(byId(sent.id), 2000, 'message after a valid join')), sent);
      socket.close();
    });
  }
});
