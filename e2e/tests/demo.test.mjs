// The demo page (web/, served by the binary at /) in a real browser:
// Chromium driven by playwright-core. Registering through the form, a room
// created and shared from the page, messages both ways with a plain
// socket.io-client from Node, unread counts from `roomUpdated`, history on
// reopening a room, and a dropped connection: what was posted meanwhile is
// shown once, in order, after the page reconnects (the client library's
// replay). The page's socket uses this run's transport (`?transports=`).
//
// Needs Chromium at /usr/bin/chromium (`apt-get install chromium`) or
// $CHROMIUM_BIN; without it the test fails, it is never skipped.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  Inbox,
  PASSWORD,
  TRANSPORT,
  api,
  connect,
  createRoom,
  emitWithAck,
  postMessage,
  register,
  startProcess,
  uniqueName,
  useServer,
} from '../lib/server.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
/** Deadline for the page to show something. */
const UI_MS = 10_000;

const ctx = useServer();
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the demo page test drives a real browser. ` +
        'Install it with `apt-get install chromium` (or set CHROMIUM_BIN).',
    );
  }
  browser = await chromium.launch({ executablePath: CHROMIUM });
});

after(async () => {
  await browser?.close();
});

/** A fresh browser context on the demo page; `errors` collects uncaught page errors. */
async function openPage(base = ctx.base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.stack ?? e.message));
  const query = TRANSPORT === 'upgrade' ? '' : `?transports=${TRANSPORT}`;
  const res = await page.goto(`${base}/${query}`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  return { context, page, errors };
}

/** The page's message list item for `body` (a stored message, not a pending one). */
const message = (page, body) => page.locator('#messages li[data-id]', { hasText: body });

/** Resolve once the page shows the stored message `body`. */
function shows(page, body) {
  return message(page, body).waitFor({ timeout: UI_MS });
}

/** Resolve once the page's connection badge is in `state`. */
function status(page, state) {
  return page.waitForSelector(`#status[data-state="${state}"]`, { timeout: UI_MS });
}

async function messages(base, token, roomId) {
  const res = await api(base, 'GET', `/v1/rooms/${roomId}/messages?limit=200`, token);
  assert.equal(res.status, 200, res.text);
  return res.json.messages;
}

describe('the demo page', () => {
  test('registers, chats with a Node client both ways, counts unread, reopens from history, and after a drop shows what was missed once', async () => {
    const { context, page, errors } = await openPage();

    // Register through the form (the chat shows only once signed in).
    assert.equal(await page.isVisible('#chat'), false, 'no chat before signing in');
    const name = uniqueName('web');
    await page.fill('#username', name);
    await page.fill('#password', PASSWORD);
    await page.click('#register');
    await status(page, 'connected');
    assert.equal(await page.textContent('#me-name'), name);
    const meId = (await page.textContent('#me-id')).trim();

    // Create a room from the page and add bob (a plain socket.io-client) by id.
    const bob = await register(ctx.base);
    await page.fill('#new-room-name', 'demo room');
    await page.click('#new-room button');
    await page.waitForSelector('#room[data-loaded="true"]', { timeout: UI_MS });
    const roomId = await page.getAttribute('#room', 'data-room-id');
    await page.waitForSelector(`#rooms li[data-room-id="${roomId}"]`, { timeout: UI_MS });
    await page.fill('#member-id', bob.user.id);
    await page.click('#add-member button');
    await page.locator('#log li', { hasText: 'demo room: 2 members' }).waitFor({ timeout: UI_MS });

    const bobSocket = await connect(ctx.base, bob.token);
    const bobInbox = new Inbox(bobSocket, 'receiveMessage');
    const joined = await emitWithAck(bobSocket, 'joinRoom', { roomId });
    assert.equal(joined.ok, true, JSON.stringify(joined));

    // The page sends; bob receives it, and the page shows it once stored.
    await page.fill('#message-input', 'hello from the page');
    await page.press('#message-input', 'Enter');
    const got = await bobInbox.waitFor((m) => m.body === 'hello from the page', UI_MS);
    assert.equal(got.senderId, meId);
    await shows(page, 'hello from the page');
    assert.equal(await page.locator('#messages li.pending').count(), 0);

    // Bob posts over REST; the page renders it live.
    const res = await postMessage(ctx.base, bob.token, roomId, 'hello from node');
    assert.equal(res.status, 201, res.text);
    await shows(page, 'hello from node');
    assert.equal(await message(page, 'hello from node').getAttribute('class'), '', 'not shown as mine');

    // Unread counts: a room bob creates with the page's user appears with
    // its count (roomUpdated), which opening the room clears.
    const side = await createRoom(ctx.base, bob.token, 'side room', [meId]);
    for (const body of ['side one', 'side two']) {
      assert.equal((await postMessage(ctx.base, bob.token, side.id, body)).status, 201);
    }
    const sideItem = `#rooms li[data-room-id="${side.id}"]`;
    await page.waitForSelector(`${sideItem} .unread[data-count="2"]`, { timeout: UI_MS });
    await page.click(sideItem);
    await shows(page, 'side two');
    await page.waitForSelector(`${sideItem} .unread[data-count="0"]`, { state: 'attached', timeout: UI_MS });

    // Back to the first room: its history comes through REST, each message once.
    await page.click(`#rooms li[data-room-id="${roomId}"]`);
    await page.waitForSelector(`#room[data-room-id="${roomId}"][data-loaded="true"]`, { timeout: UI_MS });
    await shows(page, 'hello from node');
    assert.deepEqual(
      await page.$$eval('#messages li[data-id] .body', (els) => els.map((e) => e.textContent)),
      ['hello from the page', 'hello from node'],
    );

    // Drop the page's connection and keep it offline while bob posts: the
    // message is stored while the page has no socket, so it can only come
    // back through the library's rejoin with `sinceEventSeq` (the replay).
    await context.setOffline(true);
    await page.evaluate(() => window.roomcastDemo.client.socket.io.engine.close());
    await status(page, 'reconnecting');
    const missed = await postMessage(ctx.base, bob.token, roomId, 'posted while the page was offline');
    assert.equal(missed.status, 201, missed.text);
    // The page tries to reconnect, and fails while offline.
    await page.locator('#log li', { hasText: 'cannot connect' }).waitFor({ timeout: UI_MS });
    assert.notEqual(await page.getAttribute('#status', 'data-state'), 'connected', 'still offline after the post');
    await context.setOffline(false);
    await status(page, 'connected');
    await shows(page, 'posted while the page was offline');

    // Live again; a later message proves the replay is over. Each message
    // once, in the room's order: exactly the room's history.
    assert.equal((await postMessage(ctx.base, bob.token, roomId, 'after the reconnect')).status, 201);
    await shows(page, 'after the reconnect');
    assert.equal(await message(page, 'posted while the page was offline').count(), 1);
    const history = await messages(ctx.base, bob.token, roomId);
    assert.deepEqual(
      await page.$$eval('#messages li[data-id]', (els) => els.map((e) => [e.dataset.id, e.querySelector('.body').textContent])),
      history.map((m) => [m.id, m.body]),
    );
    await page.locator('#log li', { hasText: 'reconnected' }).waitFor({ timeout: UI_MS });

    assert.deepEqual(errors, [], 'no uncaught error in the page');
    await context.close();
  });

  test('logs in through the form with an existing account (a wrong password is refused), opens a DM, and keeps the session across a reload', async () => {
    const { context, page, errors } = await openPage();
    const alice = await register(ctx.base, uniqueName('web'));

    await page.fill('#username', alice.user.username);
    await page.fill('#password', 'not the password');
    await page.click('#login');
    await page.locator('#auth-error', { hasText: 'wrong username or password' }).waitFor({ timeout: UI_MS });

    await page.fill('#password', PASSWORD);
    await page.click('#login');
    await status(page, 'connected');
    assert.equal(await page.textContent('#me-id'), alice.user.id);

    // A DM by user id opens at once, named after both users.
    const bob = await register(ctx.base);
    await page.fill('#dm-user-id', bob.user.id);
    await page.click('#new-dm button');
    await page.waitForSelector('#room[data-loaded="true"]', { timeout: UI_MS });
    const title = await page.textContent('#room-title');
    assert.ok(title.includes(alice.user.username) && title.includes(bob.user.username), title);

    // The tab keeps its session across a reload.
    await page.reload();
    await status(page, 'connected');
    assert.equal(await page.textContent('#me-name'), alice.user.username);

    await page.click('#logout');
    await page.waitForSelector('#auth-form', { state: 'visible', timeout: UI_MS });
    assert.equal(await page.isVisible('#chat'), false, 'no chat once signed out');
    assert.deepEqual(errors, [], 'no uncaught error in the page');
    await context.close();
  });

  test('asks before joining: invitations appear live, Accept opens the room, Decline removes it, and the checkbox lets anyone add', async () => {
    const { context, page, errors } = await openPage();
    const me = await register(ctx.base, uniqueName('web'));
    await page.fill('#username', me.user.username);
    await page.fill('#password', PASSWORD);
    await page.click('#login');
    await status(page, 'connected');

    // This server lets anyone add users who never chose; ask first instead.
    const box = page.locator('#add-anyone');
    await page.waitForFunction(() => document.getElementById('add-anyone').checked, null, { timeout: UI_MS });
    await setPolicy(page, () => box.uncheck(), me.token, 'invite');

    const bob = await register(ctx.base);
    const invited = await api(ctx.base, 'POST', '/v1/rooms', bob.token, { name: 'asked first', memberIds: [me.user.id] });
    assert.equal(invited.status, 201, invited.text);
    assert.deepEqual(invited.json.invited, [me.user.id], invited.text);
    const roomId = invited.json.room.id;
    const card = page.locator(`#invitations li[data-room-id="${roomId}"]`);
    await card.waitFor({ timeout: UI_MS });
    assert.equal(await page.locator(`#rooms li[data-room-id="${roomId}"]`).count(), 0, 'not a room of mine yet');
    await card.locator('button.accept').click();
    await page.waitForSelector(`#room[data-room-id="${roomId}"][data-loaded="true"]`, { timeout: UI_MS });
    await page.waitForSelector(`#rooms li[data-room-id="${roomId}"]`, { timeout: UI_MS });
    await card.waitFor({ state: 'detached', timeout: UI_MS });
    const res = await postMessage(ctx.base, bob.token, roomId, 'glad you came');
    assert.equal(res.status, 201, res.text);
    await shows(page, 'glad you came');

    const dm = await api(ctx.base, 'POST', '/v1/dms', bob.token, { userId: me.user.id });
    assert.equal(dm.status, 201, dm.text);
    const request = page.locator(`#invitations li[data-room-id="${dm.json.room.id}"]`);
    await request.waitFor({ timeout: UI_MS });
    await request.locator('button.decline').click();
    await request.waitFor({ state: 'detached', timeout: UI_MS });
    const left = await api(ctx.base, 'GET', '/v1/invitations', me.token);
    assert.deepEqual(left.json.invitations, [], 'declined on the server too');
    assert.equal(await page.isVisible('#invitations-box'), false, 'no invitations: the box is hidden');

    // Let anyone add me again: the next room is mine at once.
    await setPolicy(page, () => box.check(), me.token, 'anyone');
    const direct = await createRoom(ctx.base, bob.token, 'added directly', [me.user.id]);
    await page.waitForSelector(`#rooms li[data-room-id="${direct.id}"]`, { timeout: UI_MS });
    assert.deepEqual(errors, [], 'no uncaught error in the page');
    await context.close();
  });
});

describe('the demo page with short access tokens', () => {
  test('refreshes its tokens by itself, keeps the new ones across a reload, and keeps chatting', async () => {
    const server = await startProcess(
      ['serve', '--listen', '127.0.0.1:0', '--database-url', 'sqlite::memory:'],
      { ROOMCAST_AUTH__TOKEN_TTL_SECS: '2' },
    );
    const { context, page, errors } = await openPage(server.base);
    try {
      const refreshed = () =>
        page.waitForResponse((r) => r.url().endsWith('/v1/auth/refresh'), { timeout: UI_MS }).then((r) => r.status());
      const first = refreshed();
      await page.fill('#username', uniqueName('short'));
      await page.fill('#password', PASSWORD);
      await page.click('#register');
      await status(page, 'connected');
      assert.equal(await first, 200);
      assert.equal(await refreshed(), 200, 'and again');

      // A reload resumes with the tokens kept last: the next refresh works
      // (a used-up refresh token would end the session instead).
      await page.reload();
      await status(page, 'connected');
      assert.equal(await refreshed(), 200);
      await page.fill('#new-room-name', 'still here');
      await page.click('#new-room button');
      await page.waitForSelector('#room[data-loaded="true"]', { timeout: UI_MS });
      await page.fill('#message-input', 'after three refreshes');
      await page.press('#message-input', 'Enter');
      await shows(page, 'after three refreshes');
      assert.deepEqual(errors, [], 'no uncaught error in the page');
    } finally {
      await context.close();
      await server.stop();
    }
  });
});

/** Run `click` on the page's add-policy checkbox, wait for the page's PATCH, and check the server kept `policy`. */
async function setPolicy(page, click, token, policy) {
  const saved = page.waitForResponse(
    (r) => r.url().endsWith('/v1/me/settings') && r.request().method() === 'PATCH',
    { timeout: UI_MS },
  );
  await click();
  assert.equal((await saved).status(), 200);
  const me = await api(ctx.base, 'GET', '/v1/me', token);
  assert.equal(me.json.settings.addPolicy, policy, me.text);
}
