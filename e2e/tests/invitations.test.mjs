// Consent to be added (issue #16), at the product's defaults: nobody becomes
// a member of a room without agreeing. Adding a user, or opening a DM with
// them, invites them; they hear `invitationReceived` on their sockets, and
// accept or decline over HTTP. A user may let anyone add them instead.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PRODUCT_DEFAULTS, api, emitWithAck, useServer } from '../lib/server.mjs';
import { ackError, call, cid, connectAs, expectError, joinRoom, newClient, roomIs } from '../lib/chat.mjs';

const ctx = useServer(PRODUCT_DEFAULTS);

const accept = (who, roomId) => api(ctx.base, 'POST', `/v1/invitations/${roomId}/accept`, who.token);
const decline = (who, roomId) => api(ctx.base, 'POST', `/v1/invitations/${roomId}/decline`, who.token);
const invitations = async (who) =>
  (await call(ctx.base, 'GET', '/v1/invitations', who.token, undefined, 200)).invitations;

describe('consent to be added', () => {
  test('a new user is asked: GET /v1/me says addPolicy "invite"', async () => {
    const alice = await newClient(ctx.base, { joinUser: false });
    const me = await call(ctx.base, 'GET', '/v1/me', alice.token, undefined, 200);
    assert.deepEqual(me.settings, { addPolicy: 'invite' });
  });

  test('adding invites: the invitee hears invitationReceived, cannot join until they accept, then is a member', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);

    const created = await call(ctx.base, 'POST', '/v1/rooms', alice.token, { name: 'plans', memberIds: [bob.user.id] }, 201);
    assert.deepEqual(created.room.members, [alice.user.id], 'bob was not added');
    assert.deepEqual(created.invited, [bob.user.id]);
    const roomId = created.room.id;

    const inv = await bob.tape.waitFor('invitationReceived', (i) => i?.roomId === roomId, 3000, 'the invitation');
    assert.equal(inv.name, 'plans');
    assert.equal(inv.kind, 'group');
    assert.equal(inv.inviterId, alice.user.id);
    assert.equal(inv.userId, bob.user.id);
    assert.deepEqual(await invitations(bob), [inv], 'GET /v1/invitations lists what the socket heard');

    // Not a member yet: no room, no live events, no history.
    ackError(await emitWithAck(bob.socket, 'joinRoom', { roomId }), 'forbidden', 'joinRoom before accepting');
    expectError(await api(ctx.base, 'GET', `/v1/rooms/${roomId}/messages`, bob.token), 403, 'forbidden', 'history before accepting');
    await call(ctx.base, 'POST', `/v1/rooms/${roomId}/messages`, alice.token, { clientMsgId: cid(), body: 'before bob' }, 201);

    const accepted = await call(ctx.base, 'POST', `/v1/invitations/${roomId}/accept`, bob.token, undefined, 200);
    assert.deepEqual(accepted.room.members, [alice.user.id, bob.user.id]);
    assert.equal(accepted.room.unreadCount, 0, 'what was said before he joined is not unread');
    const removed = await bob.tape.waitFor('invitationRemoved', (r) => r?.roomId === roomId, 3000, 'invitation ended');
    assert.equal(removed.reason, 'accepted');
    await bob.tape.waitFor('roomUpdated', (r) => r?.id === roomId && r.members.includes(bob.user.id), 3000, 'joined');
    await alice.tape.waitFor('roomUpdated', (r) => r?.id === roomId && r.members.includes(bob.user.id), 3000, 'alice sees bob join');
    assert.deepEqual(await invitations(bob), []);

    await joinRoom(bob.socket, roomId);
    const sent = await call(ctx.base, 'POST', `/v1/rooms/${roomId}/messages`, alice.token, { clientMsgId: cid(), body: 'welcome' }, 201);
    await bob.tape.waitFor('receiveMessage', (m) => m?.id === sent.message.id, 3000, 'a message after joining');
  });

  test('declining leaves the invitee out, on every device, and a DM stays with its opener alone', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const phone = await connectAs(ctx.base, bob, { label: 'bob phone' }); // bob's second device

    const dm = await call(ctx.base, 'POST', '/v1/dms', alice.token, { userId: bob.user.id }, 201);
    assert.equal(dm.room.kind, 'dm');
    assert.deepEqual(dm.room.members, [alice.user.id]);
    assert.deepEqual(dm.invited, [bob.user.id]);
    const roomId = dm.room.id;
    for (const tape of [bob.tape, phone.tape]) {
      const inv = await tape.waitFor('invitationReceived', (i) => i?.roomId === roomId, 3000, 'DM request');
      assert.equal(inv.kind, 'dm');
    }

    const res = await decline(bob, roomId);
    assert.equal(res.status, 204, res.text);
    for (const tape of [bob.tape, phone.tape]) {
      const removed = await tape.waitFor('invitationRemoved', (r) => r?.roomId === roomId, 3000, 'declined everywhere');
      assert.equal(removed.reason, 'declined');
    }
    assert.deepEqual(await invitations(bob), []);
    expectError(await accept(bob, roomId), 404, 'not_found', 'accepting a declined invitation');
    const again = await call(ctx.base, 'POST', '/v1/dms', alice.token, { userId: bob.user.id }, 200);
    assert.deepEqual(again.room.members, [alice.user.id], 'reopening does not add him');
    assert.deepEqual(await invitations(bob), [], 'nor invite him again');

    // Bob changes his mind: opening the DM himself is consent.
    const mine = await call(ctx.base, 'POST', '/v1/dms', bob.token, { userId: alice.user.id }, 200);
    assert.equal(mine.room.id, roomId);
    assert.deepEqual(mine.room.members, [alice.user.id, bob.user.id]);
    await alice.tape.waitFor('roomUpdated', (r) => r?.id === roomId && r.members.length === 2, 3000, 'alice sees bob join');
  });

  test('a user who lets anyone add them is added at once', async () => {
    const alice = await newClient(ctx.base);
    const bob = await newClient(ctx.base);
    const set = await call(ctx.base, 'PATCH', '/v1/me/settings', bob.token, { addPolicy: 'anyone' }, 200);
    assert.deepEqual(set.settings, { addPolicy: 'anyone' });
    expectError(await api(ctx.base, 'PATCH', '/v1/me/settings', bob.token, { addPolicy: 'nobody' }), 400, 'bad_request', 'unknown policy');

    const room = await call(ctx.base, 'POST', '/v1/rooms', alice.token, { name: 'open', memberIds: [] }, 201);
    const added = await call(ctx.base, 'POST', `/v1/rooms/${room.room.id}/members`, alice.token, { userIds: [bob.user.id] }, 200);
    assert.deepEqual(added.room.members, [alice.user.id, bob.user.id]);
    assert.deepEqual(added.invited, []);
    await bob.tape.waitFor('roomUpdated', roomIs(room.room.id), 3000, 'bob told of the room');
    assert.equal(bob.tape.all('invitationReceived').length, 0, bob.tape.describe());
  });
});
