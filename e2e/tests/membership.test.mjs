// Room membership: creating group rooms (roles, RoomView), adding and removing
// members, leaving, roles (owner > admin > member), renaming, `roomUpdated`
// and `roomRemoved`, and `leaveRoom` on a socket.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { api, emitWithAck, NO_LIMITS, useServer } from '../lib/server.mjs';
import {
  ackError,
  ackOk,
  allRooms,
  connectAs,
  expectError,
  history,
  joinRoom,
  makeRoom,
  newClient,
  roomIs,
  roomView,
  say,
  sorted,
} from '../lib/chat.mjs';

// Dozens of users registered from one address set the rooms up: limits off
// (NO_LIMITS), they are not what this tests.
const ctx = useServer(NO_LIMITS);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const membersPath = (roomId) => `/v1/rooms/${roomId}/members`;
const memberPath = (roomId, userId) => `/v1/rooms/${roomId}/members/${userId}`;
const rolePath = (roomId, userId) => `/v1/rooms/${roomId}/members/${userId}/role`;

/** Add `users` as `actor`; returns the raw response. */
const add = (actor, roomId, users) =>
  api(ctx.base, 'POST', membersPath(roomId), actor.token, { userIds: users.map((u) => u.user.id) });
const remove = (actor, roomId, user) => api(ctx.base, 'DELETE', memberPath(roomId, user.user.id), actor.token);
const setRole = (actor, roomId, user, role) => api(ctx.base, 'PUT', rolePath(roomId, user.user.id), actor.token, { role });
const rename = (actor, roomId, name) => api(ctx.base, 'PATCH', `/v1/rooms/${roomId}`, actor.token, { name });

describe('creating a group room', () => {
  test('the creator is owner, the others members; the answer is the RoomView as the creator sees it; every member gets roomUpdated', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);

    const res = await api(ctx.base, 'POST', '/v1/rooms', alice.token, {
      name: 'general',
      memberIds: [bob.user.id, carol.user.id, bob.user.id],
    });
    assert.equal(res.status, 201, res.text);
    const room = res.json.room;
    assert.equal(typeof room.id, 'string');
    assert.equal(room.kind, 'group');
    assert.equal(room.name, 'general');
    assert.deepEqual(room.members, [alice.user.id, bob.user.id, carol.user.id], 'creator first, then in the order given, deduplicated');
    assert.deepEqual(room.roles, {
      [alice.user.id]: 'owner',
      [bob.user.id]: 'member',
      [carol.user.id]: 'member',
    });
    assert.equal(room.lastSeq, 0);
    assert.match(room.createdAt, RFC3339);
    assert.equal(room.lastActivityAt, room.createdAt, 'no message yet: lastActivityAt is the creation time');
    assert.equal(room.readSeq, 0);
    assert.equal(room.unreadCount, 0);
    assert.equal(room.lastMessage, null);

    for (const who of [alice, bob, carol]) {
      const got = await who.tape.waitFor('roomUpdated', roomIs(room.id), 3000, `creation of ${room.id}`);
      assert.deepEqual(got, room, `${who.user.username}'s roomUpdated`);
      assert.deepEqual(await roomView(ctx.base, who, room.id), room, `GET /v1/rooms/{id} as ${who.user.username}`);
    }
  });

  test('bad bodies are 400 and create nothing', async () => {
    const alice = await newClient(ctx.base);
    for (const [what, body] of [
      ['empty name', { name: '   ' }],
      ['name of 101 characters', { name: 'x'.repeat(101) }],
      ['memberIds not ids', { name: 'x', memberIds: ['nope'] }],
      ['unknown member id', { name: 'x', memberIds: [randomUUID()] }],
    ]) {
      expectError(await api(ctx.base, 'POST', '/v1/rooms', alice.token, body), 400, 'bad_request', what);
    }
    assert.deepEqual(await allRooms(ctx.base, alice), []);
  });

  test('GET /v1/rooms/{id}: unknown room 404, not an id 400', async () => {
    const alice = await newClient(ctx.base);
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${randomUUID()}`, alice.token), 404, 'not_found', 'unknown room');
    expectError(await api(ctx.base, 'GET', '/v1/rooms/not-an-id', alice.token), 400, 'bad_request', 'malformed room id');
  });
});

describe('adding members', () => {
  test('the owner adds a member: 200 {room}; every member, the newcomer included, gets roomUpdated; the newcomer starts at lastSeq', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'growing', [bob]);
    await say(ctx.base, alice, room.id, 'before carol 1');
    const m2 = await say(ctx.base, bob, room.id, 'before carol 2');

    const res = await add(alice, room.id, [carol]);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.room.members, [alice.user.id, bob.user.id, carol.user.id]);
    assert.equal(res.json.room.roles[carol.user.id], 'member');
    assert.equal(res.json.room.id, room.id);

    const forCarol = await carol.tape.waitFor('roomUpdated', roomIs(room.id), 3000, 'carol added');
    assert.deepEqual(forCarol.members, [alice.user.id, bob.user.id, carol.user.id]);
    assert.equal(forCarol.lastSeq, 2);
    assert.equal(forCarol.readSeq, 2, 'a member added later starts at the last seq');
    assert.equal(forCarol.unreadCount, 0, 'older messages are not unread for a newcomer');
    assert.equal(forCarol.lastMessage?.id, m2.id);
    for (const who of [alice, bob]) {
      await who.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.members.includes(carol.user.id), 3000, `${who.user.username} told of carol`);
    }
    // The newcomer reads the history and can post.
    assert.equal((await history(ctx.base, carol, room.id)).length, 2);
    await say(ctx.base, carol, room.id, 'hi all');
  });

  test('adding an existing member changes nothing and sends nothing', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'stable', [bob]);
    await bob.tape.waitFor('roomUpdated', roomIs(room.id), 3000, 'creation');
    const mark = bob.tape.mark();

    const res = await add(alice, room.id, [bob]);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.room.members, [alice.user.id, bob.user.id]);

    // Sentinel: a message makes a roomUpdated for bob; it must be the only one since the mark.
    const m = await say(ctx.base, alice, room.id, 'sentinel');
    await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === m.seq, 3000, 'sentinel', mark);
    const updates = bob.tape.since(mark).filter((e) => e.event === 'roomUpdated');
    assert.equal(updates.length, 1, `expected only the sentinel's roomUpdated:\n  ${bob.tape.describe()}`);
  });

  test('bad member lists are 400 and change nothing', async () => {
    const alice = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'strict');
    for (const [what, body] of [
      ['empty userIds', { userIds: [] }],
      ['no userIds', {}],
      ['not ids', { userIds: ['x'] }],
      ['unknown user', { userIds: [randomUUID()] }],
      ['1001 users', { userIds: Array.from({ length: 1001 }, () => randomUUID()) }],
    ]) {
      expectError(await api(ctx.base, 'POST', membersPath(room.id), alice.token, body), 400, 'bad_request', what);
    }
    assert.deepEqual((await roomView(ctx.base, alice, room.id)).members, [alice.user.id]);
  });
});

describe('roles', () => {
  test('the owner makes an admin; an admin renames, adds and removes members but not admins or the owner, and cannot change roles', async () => {
    const alice = await newClient(ctx.base); // owner
    const bob = await newClient(ctx.base); // becomes admin
    const carol = await newClient(ctx.base); // becomes admin too
    const dave = await newClient(ctx.base); // member
    const erin = await newClient(ctx.base); // added by bob
    const room = await makeRoom(ctx.base, alice, 'managed', [bob, carol, dave]);

    let res = await setRole(alice, room.id, bob, 'admin');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.room.roles[bob.user.id], 'admin');
    await dave.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.roles[bob.user.id] === 'admin', 3000, 'role change told to members');

    res = await rename(bob, room.id, 'managed by bob');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.room.name, 'managed by bob');
    res = await add(bob, room.id, [erin]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.room.roles[erin.user.id], 'member');
    res = await remove(bob, room.id, dave);
    assert.equal(res.status, 200, res.text);
    assert.ok(!res.json.room.members.includes(dave.user.id));

    expectError(await setRole(bob, room.id, erin, 'admin'), 403, 'forbidden', 'an admin changes a role');
    expectError(await remove(bob, room.id, alice), 403, 'forbidden', 'an admin removes the owner');
    res = await setRole(alice, room.id, carol, 'admin');
    assert.equal(res.status, 200, res.text);
    expectError(await remove(bob, room.id, carol), 403, 'forbidden', 'an admin removes another admin');

    // The owner unmakes an admin, and removes admins.
    res = await setRole(alice, room.id, carol, 'member');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.room.roles[carol.user.id], 'member');
    res = await remove(alice, room.id, bob);
    assert.equal(res.status, 200, res.text);

    const final = await roomView(ctx.base, alice, room.id);
    assert.deepEqual(final.members, [alice.user.id, carol.user.id, erin.user.id]);
    assert.deepEqual(final.roles, {
      [alice.user.id]: 'owner',
      [carol.user.id]: 'member',
      [erin.user.id]: 'member',
    });
    assert.equal(final.name, 'managed by bob');
  });

  test('a plain member may not rename, add, remove or change roles (403, nothing changed)', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const dave = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'flat', [bob, carol]);
    const before = await roomView(ctx.base, alice, room.id);

    expectError(await rename(bob, room.id, 'mine now'), 403, 'forbidden', 'member renames');
    expectError(await add(bob, room.id, [dave]), 403, 'forbidden', 'member adds');
    expectError(await remove(bob, room.id, carol), 403, 'forbidden', 'member removes a member');
    expectError(await remove(bob, room.id, alice), 403, 'forbidden', 'member removes the owner');
    expectError(await setRole(bob, room.id, bob, 'admin'), 403, 'forbidden', 'member makes themselves admin');
    expectError(await setRole(bob, room.id, carol, 'admin'), 403, 'forbidden', 'member makes another admin');

    assert.deepEqual(await roomView(ctx.base, alice, room.id), before);
  });

  test('roles are "admin" or "member": "owner" or anything else is 400; the owner\'s role cannot change', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'roles', [bob]);
    expectError(await setRole(alice, room.id, bob, 'owner'), 400, 'bad_request', 'role owner');
    expectError(await setRole(alice, room.id, bob, 'king'), 400, 'bad_request', 'role king');
    expectError(await api(ctx.base, 'PUT', rolePath(room.id, bob.user.id), alice.token, {}), 400, 'bad_request', 'no role');
    expectError(await setRole(alice, room.id, alice, 'member'), 400, 'bad_request', "the owner's own role");
    assert.deepEqual((await roomView(ctx.base, alice, room.id)).roles, {
      [alice.user.id]: 'owner',
      [bob.user.id]: 'member',
    });
  });

  test('setting the role a member already has changes nothing and sends nothing', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'same role', [bob]);
    await bob.tape.waitFor('roomUpdated', roomIs(room.id), 3000, 'creation');
    const mark = bob.tape.mark();
    const res = await setRole(alice, room.id, bob, 'member');
    assert.equal(res.status, 200, res.text);
    const m = await say(ctx.base, alice, room.id, 'sentinel');
    await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === m.seq, 3000, 'sentinel', mark);
    assert.equal(bob.tape.since(mark).filter((e) => e.event === 'roomUpdated').length, 1, bob.tape.describe());
  });
});

describe('renaming', () => {
  test('rename: 200 {room}; every member gets roomUpdated with the name; the same name again sends nothing; bad names 400', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'old name', [bob]);
    await bob.tape.waitFor('roomUpdated', roomIs(room.id), 3000, 'creation');

    const res = await rename(alice, room.id, 'new name');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.room.name, 'new name');
    for (const who of [alice, bob]) {
      await who.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.name === 'new name', 3000, `${who.user.username} sees the rename`);
    }

    const mark = bob.tape.mark();
    const again = await rename(alice, room.id, 'new name');
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.room.name, 'new name');
    const m = await say(ctx.base, alice, room.id, 'sentinel');
    await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.lastSeq === m.seq, 3000, 'sentinel', mark);
    assert.equal(bob.tape.since(mark).filter((e) => e.event === 'roomUpdated').length, 1, bob.tape.describe());

    expectError(await rename(alice, room.id, ' '), 400, 'bad_request', 'blank name');
    expectError(await rename(alice, room.id, 'n'.repeat(101)), 400, 'bad_request', 'long name');
    expectError(await api(ctx.base, 'PATCH', `/v1/rooms/${room.id}`, alice.token, {}), 400, 'bad_request', 'no name');
    expectError(await rename(alice, randomUUID(), 'x'), 404, 'not_found', 'unknown room');
    assert.equal((await roomView(ctx.base, bob, room.id)).name, 'new name');
  });
});

describe('removing and leaving', () => {
  test('a removed member gets roomRemoved, then nothing more from the room on any socket; the others get roomUpdated', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base); // socket with joinUser
    const carol = await newClient(ctx.base);
    const bob2 = await connectAs(ctx.base, bob, { joinUser: false, label: 'bob (no joinUser)' });
    const room = await makeRoom(ctx.base, alice, 'about to lose bob', [bob, carol]);
    const side = await makeRoom(ctx.base, alice, 'sentinel room', [bob]);
    for (const s of [bob.socket, bob2.socket]) {
      await joinRoom(s, room.id);
      await joinRoom(s, side.id);
    }
    await joinRoom(carol.socket, room.id);
    const before = await say(ctx.base, alice, room.id, 'bob still here');
    await bob.tape.waitFor('receiveMessage', (m) => m?.id === before.id, 3000, 'message before removal');
    await bob2.tape.waitFor('receiveMessage', (m) => m?.id === before.id, 3000, 'message before removal');

    const res = await remove(alice, room.id, bob);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.room.members, [alice.user.id, carol.user.id]);
    assert.equal(res.json.room.roles[bob.user.id], undefined);

    const removed = await bob.tape.waitFor('roomRemoved', (p) => p?.roomId === room.id, 3000, 'roomRemoved for bob');
    assert.deepEqual(removed, { roomId: room.id, userId: bob.user.id });
    const markBob = bob.tape.entries.findIndex((e) => e.event === 'roomRemoved');
    await carol.tape.waitFor('roomUpdated', (r) => r?.id === room.id && !r.members.includes(bob.user.id), 3000, 'carol told bob left');
    assert.deepEqual(carol.tape.all('roomRemoved'), [], 'roomRemoved goes to the removed user only');

    // After the removal: a message in the room (carol gets it), then a sentinel in the side room.
    const after = await say(ctx.base, alice, room.id, 'bob is gone');
    await carol.tape.waitFor('receiveMessage', (m) => m?.id === after.id, 3000, 'carol receives the room message');
    const sentinel = await say(ctx.base, alice, side.id, 'sentinel');
    for (const t of [bob.tape, bob2.tape]) {
      await t.waitFor('receiveMessage', (m) => m?.id === sentinel.id, 3000, 'sentinel in the side room');
      const leaked = t.entries.filter(
        (e) => e.event === 'receiveMessage' && e.payload?.roomId === room.id && e.payload.id !== before.id,
      );
      assert.deepEqual(leaked, [], `${t.label} received a message of a room it was removed from:\n  ${t.describe()}`);
    }
    const lateUpdates = bob.tape
      .since(markBob)
      .filter((e) => e.event === 'roomUpdated' && e.payload?.id === room.id);
    assert.deepEqual(lateUpdates, [], `bob got roomUpdated for the room after roomRemoved:\n  ${bob.tape.describe()}`);
    assert.deepEqual(bob2.tape.all('roomRemoved'), [], 'a socket that never sent joinUser does not get roomRemoved');

    // Bob's view of things now.
    assert.ok(!(await allRooms(ctx.base, bob)).some((r) => r.id === room.id), 'room no longer listed for bob');
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${room.id}`, bob.token), 403, 'forbidden', 'GET room after removal');
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${room.id}/messages`, bob.token), 403, 'forbidden', 'history after removal');
    ackError(await emitWithAck(bob.socket, 'joinRoom', { roomId: room.id }), 'forbidden', 'joinRoom after removal');
  });

  test('leaving: DELETE members/{me} and POST leave are 204; the leaver gets roomRemoved, the others roomUpdated; leaving again is 403', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'door', [bob, carol]);

    let res = await api(ctx.base, 'DELETE', memberPath(room.id, bob.user.id), bob.token);
    assert.equal(res.status, 204, res.text);
    assert.equal(res.text, '', '204 has no body');
    assert.deepEqual(
      await bob.tape.waitFor('roomRemoved', (p) => p?.roomId === room.id, 3000, 'bob left (DELETE)'),
      { roomId: room.id, userId: bob.user.id },
    );
    await alice.tape.waitFor('roomUpdated', (r) => r?.id === room.id && !r.members.includes(bob.user.id), 3000, 'alice told bob left');

    res = await api(ctx.base, 'POST', `/v1/rooms/${room.id}/leave`, carol.token);
    assert.equal(res.status, 204, res.text);
    assert.deepEqual(
      await carol.tape.waitFor('roomRemoved', (p) => p?.roomId === room.id, 3000, 'carol left (POST leave)'),
      { roomId: room.id, userId: carol.user.id },
    );
    assert.deepEqual((await roomView(ctx.base, alice, room.id)).members, [alice.user.id]);

    expectError(await api(ctx.base, 'POST', `/v1/rooms/${room.id}/leave`, carol.token), 403, 'forbidden', 'leave again');
    expectError(await api(ctx.base, 'DELETE', memberPath(room.id, bob.user.id), bob.token), 403, 'forbidden', 'DELETE self again');
  });

  test('the owner cannot leave while others remain (409); alone, they can (204)', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'captain', [bob]);
    expectError(await api(ctx.base, 'POST', `/v1/rooms/${room.id}/leave`, alice.token), 409, 'conflict', 'owner leaves');
    expectError(await api(ctx.base, 'DELETE', memberPath(room.id, alice.user.id), alice.token), 409, 'conflict', 'owner DELETEs self');
    assert.deepEqual((await roomView(ctx.base, bob, room.id)).members, [alice.user.id, bob.user.id]);

    const res = await remove(alice, room.id, bob);
    assert.equal(res.status, 200, res.text);
    const left = await api(ctx.base, 'POST', `/v1/rooms/${room.id}/leave`, alice.token);
    assert.equal(left.status, 204, left.text);
    await alice.tape.waitFor('roomRemoved', (p) => p?.roomId === room.id, 3000, 'owner left');
    assert.ok(!(await allRooms(ctx.base, alice)).some((r) => r.id === room.id));
  });

  test('removing a user who is not a member is 404; removing the owner is 403; an unknown room is 404', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const stranger = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'gate', [bob]);
    expectError(await remove(alice, room.id, stranger), 404, 'not_found', 'remove a non-member');
    expectError(await api(ctx.base, 'DELETE', memberPath(room.id, randomUUID()), alice.token), 404, 'not_found', 'remove an unknown user');
    expectError(await remove(alice, randomUUID(), bob), 404, 'not_found', 'unknown room');
    expectError(await api(ctx.base, 'DELETE', memberPath(room.id, 'nope'), alice.token), 400, 'bad_request', 'user id not an id');
    assert.deepEqual((await roomView(ctx.base, alice, room.id)).members, [alice.user.id, bob.user.id]);
  });

  test('a removed member can be added again and starts at the room\'s last seq', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'revolving', [bob]);
    assert.equal((await remove(alice, room.id, bob)).status, 200);
    await bob.tape.waitFor('roomRemoved', (p) => p?.roomId === room.id, 3000, 'removed');
    await say(ctx.base, alice, room.id, 'while bob was out');
    const res = await add(alice, room.id, [bob]);
    assert.equal(res.status, 200, res.text);
    const view = await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && r.members.includes(bob.user.id) && r.lastSeq === 1, 3000, 'bob re-added');
    assert.equal(view.readSeq, 1);
    assert.equal(view.unreadCount, 0);
    await joinRoom(bob.socket, room.id);
  });
});

describe('leaveRoom (socket)', () => {
  test('stops this socket\'s events for the room; the membership and the user\'s other sockets are unchanged', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const bob2 = await connectAs(ctx.base, bob, { label: 'bob second socket' });
    const room = await makeRoom(ctx.base, alice, 'quiet please', [bob]);
    const side = await makeRoom(ctx.base, alice, 'side', [bob]);
    await joinRoom(bob.socket, room.id);
    await joinRoom(bob.socket, side.id);
    await joinRoom(bob2.socket, room.id);

    ackOk(await emitWithAck(bob.socket, 'leaveRoom', { roomId: room.id }), 'leaveRoom');
    const m = await say(ctx.base, alice, room.id, 'after leaveRoom');
    await bob2.tape.waitFor('receiveMessage', (x) => x?.id === m.id, 3000, 'other socket still receives');
    const sentinel = await say(ctx.base, alice, side.id, 'sentinel');
    await bob.tape.waitFor('receiveMessage', (x) => x?.id === sentinel.id, 3000, 'sentinel');
    assert.deepEqual(bob.tape.all('receiveMessage', (x) => x?.roomId === room.id), [], bob.tape.describe());

    // Still a member: GET works, joining again brings the events back.
    assert.ok((await roomView(ctx.base, bob, room.id)).members.includes(bob.user.id));
    await joinRoom(bob.socket, room.id);
    const again = await say(ctx.base, alice, room.id, 'after rejoin');
    await bob.tape.waitFor('receiveMessage', (x) => x?.id === again.id, 3000, 'after rejoin');

    ackError(await emitWithAck(bob.socket, 'leaveRoom', { roomId: 'nope' }), 'bad_request', 'leaveRoom with a bad id');
    ackError(await emitWithAck(bob.socket, 'leaveRoom', {}), 'bad_request', 'leaveRoom without roomId');
  });
});

describe('consistency', () => {
  test('removing from a group room records the change for everyone (GET agrees with events)', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const carol = await newClient(ctx.base);
    const room = await makeRoom(ctx.base, alice, 'consistency', [bob, carol]);
    assert.equal((await remove(alice, room.id, carol)).status, 200);
    const last = await bob.tape.waitFor('roomUpdated', (r) => r?.id === room.id && !r.members.includes(carol.user.id), 3000, 'bob told');
    assert.deepEqual(await roomView(ctx.base, bob, room.id), last);
    assert.deepEqual(sorted(last.members), sorted([alice.user.id, bob.user.id]));
  });
});
