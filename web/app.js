// roomcast demo page: a small chat on the client library (`/client.js`, which
// is clients/js/index.js) and socket.io-client (vendored, MIT). It talks to
// the origin it was served from: HTTP `/v1/...` for accounts, rooms and
// history, Socket.IO for live events. The library rejoins every open room
// after a reconnect with `sinceEventSeq`, so the server replays what the page
// missed and each message is shown once, in order.
//
// `?transports=websocket` (or `polling`) picks socket.io-client's transports;
// the default is long-polling upgraded to websocket.
// `window.roomcastDemo.client` is the RoomcastClient, for poking from devtools.

import { io } from './vendor/socket.io.esm.min.js';
import { RoomcastClient, RoomcastError, login, refresh, register } from './client.js';

const BASE = location.origin;
const SESSION_KEY = 'roomcast.demo.session';
const HISTORY_PAGE = 100;
const TYPING_REFRESH_MS = 2000;
const LOG_LINES = 50;
const transports = new URLSearchParams(location.search).get('transports')?.split(',').filter(Boolean);

const $ = (id) => document.getElementById(id);

const state = {
  session: null, // {token, user}
  client: null,
  connectedOnce: false,
  retrying: false, // a connect attempt failed since the last connection (logged once)
  rooms: new Map(), // roomId → RoomView
  invitations: new Map(), // roomId → Invitation (pending, to this user)
  roomsLoad: null, // while GET /v1/rooms is in flight: {updated: Map, removed: Set} seen meanwhile
  current: null, // the open room's id
  opening: 0, // bumped by each openRoom; a stale open stops when it sees another value
  messages: new Map(), // messageId → {li, live}: the open room's rendered messages
  pending: new Map(), // clientMsgId → li: sent, not yet back as receiveMessage
  typers: new Set(), // userIds typing in the open room
  lastTypingSent: 0,
};

// ---------------------------------------------------------------------------
// HTTP

/** Keep the tab's tokens (a refresh uses the refresh token up: the new one must be kept). */
function saveTokens({ token, refreshToken, expiresIn }) {
  if (!state.session) return;
  Object.assign(state.session, { token, refreshToken, expiresIn });
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
}

/** New tokens now: through the client once connected (one refresh at a time), else directly. */
async function refreshTokens() {
  if (state.client) return state.client.refreshNow();
  const session = await refresh(BASE, state.session.refreshToken);
  saveTokens(session);
  return session;
}

async function http(method, path, body, retried = false) {
  if (!state.session) throw new RoomcastError('unauthorized', 'signed out');
  const token = state.client?.token ?? state.session.token;
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(new URL(path, BASE), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const json = await res.json().catch(() => ({}));
  if (res.status === 401 && !retried && state.session.refreshToken) {
    // The access token ran out: renew it once and ask again.
    const renewed = await refreshTokens().then(() => true, () => false);
    if (renewed) return http(method, path, body, true);
  }
  if (res.status === 401) logout('Your session expired: sign in again.');
  if (!res.ok) {
    throw new RoomcastError(json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${res.status}`);
  }
  return json;
}

/** A random id: `crypto.randomUUID` needs a secure context, this page may be served over plain http. */
function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function showError(id, err) {
  $(id).textContent = err ? (err.message ?? String(err)) : '';
}

function log(text) {
  const list = $('log');
  list.append(el('li', { textContent: `${new Date().toLocaleTimeString()} ${text}` }));
  while (list.children.length > LOG_LINES) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function setStatus(kind, text = kind) {
  const s = $('status');
  s.dataset.state = kind;
  s.textContent = text;
}

function userLabel(userId) {
  if (userId === state.session?.user.id) return state.session.user.username;
  return `user …${userId.slice(-6)}`;
}

// ---------------------------------------------------------------------------
// Signing in and out

function showAuth(message = '') {
  $('chat').hidden = true;
  $('me').hidden = true;
  $('auth').hidden = false;
  $('auth-error').textContent = message;
  setStatus('offline');
  $('username').focus();
}

$('auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const action = e.submitter?.value === 'register' ? register : login;
  const buttons = e.currentTarget.querySelectorAll('button');
  buttons.forEach((b) => (b.disabled = true));
  showError('auth-error');
  try {
    const session = await action(BASE, $('username').value.trim(), $('password').value);
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    $('password').value = '';
    start(session);
  } catch (err) {
    showError('auth-error', err);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
});

$('logout').addEventListener('click', () => {
  // End the session on the server too (its other tabs' sockets stay).
  http('POST', '/v1/auth/logout').catch(() => {});
  logout();
});

$('copy-id').addEventListener('click', () => {
  navigator.clipboard?.writeText(state.session.user.id).catch(() => {});
});

function logout(message) {
  if (!state.session) return;
  state.client?.close();
  sessionStorage.removeItem(SESSION_KEY);
  Object.assign(state, { session: null, client: null, connectedOnce: false, retrying: false, roomsLoad: null });
  state.rooms.clear();
  state.invitations.clear();
  closeRoom();
  $('rooms').replaceChildren();
  renderInvitations();
  $('log').replaceChildren();
  showAuth(message);
}

// ---------------------------------------------------------------------------
// The connection

function start(session) {
  state.session = session;
  $('auth').hidden = true;
  $('chat').hidden = false;
  $('me').hidden = false;
  $('me-name').textContent = session.user.username;
  $('me-id').textContent = session.user.id;

  const client = new RoomcastClient({
    io,
    url: BASE,
    token: session.token,
    refreshToken: session.refreshToken,
    expiresIn: session.expiresIn,
    socketOptions: { reconnectionDelay: 500, reconnectionDelayMax: 3000, ...(transports ? { transports } : {}) },
  });
  state.client = client;
  window.roomcastDemo = { client, state };
  const mine = (fn) => (payload) => {
    if (state.client === client) fn(payload);
  };

  client.on('tokens', mine(saveTokens));
  client.on('connect', mine(onConnect));
  client.on('disconnect', mine((reason) => {
    setStatus('reconnecting', 'reconnecting…');
    log(`disconnected (${reason})`);
  }));
  client.socket.io.on('reconnect_attempt', mine((n) => setStatus('reconnecting', `reconnecting… (attempt ${n})`)));
  client.socket.on('connect_error', mine((err) => {
    // A refused token is final (socket.io-client stops); a network error is retried.
    if (!client.socket.active) logout(`The server refused the connection: ${err.message}. Sign in again.`);
    else if (!state.retrying) log(`cannot connect (${err.message}): retrying`);
    state.retrying = true;
  }));
  client.on('error', mine((err) => log(`rejoin failed: ${err.message}`)));
  client.on('reload', mine((r) => onReload(r).catch((err) => log(`reload: ${err.message}`))));

  client.on('receiveMessage', mine(onMessage));
  client.on('messageUpdated', mine((m) => upsertMessage(m, true)));
  client.on('messageDeleted', mine((m) => upsertMessage(m, true)));
  client.on('roomUpdated', mine(onRoomUpdated));
  client.on('roomRemoved', mine(onRoomRemoved));
  client.on('invitationReceived', mine((inv) => {
    state.invitations.set(inv.roomId, inv);
    renderInvitations();
  }));
  client.on('invitationRemoved', mine(({ roomId }) => {
    state.invitations.delete(roomId);
    renderInvitations();
  }));
  client.on('typing', mine(onTyping));

  setStatus('connecting', 'connecting…');
  client.connect().catch(() => {}); // connect_error above says what happened
}

function onConnect() {
  setStatus('connected');
  state.retrying = false;
  if (state.connectedOnce) {
    log('reconnected: what the open room missed meanwhile is replayed');
  } else {
    log(`connected (${state.client.socket.io.engine?.transport?.name ?? 'socket'})`);
  }
  state.connectedOnce = true;
  // Per-user events (room list, unread counts) are not replayed: read them again.
  loadRooms().catch((err) => log(`room list: ${err.message}`));
  loadInvitations().catch((err) => log(`invitations: ${err.message}`));
}

/** The server could not replay a room's gap: read the room again through REST. */
async function onReload({ roomId }) {
  log('a gap could not be replayed: reloading from history');
  loadRooms().catch((err) => log(`room list: ${err.message}`));
  if (roomId !== state.current) return;
  const gen = state.opening;
  const { room } = await http('GET', `/v1/rooms/${roomId}`);
  if (gen === state.opening) await loadHistory(roomId, room.lastSeq, gen);
}

// ---------------------------------------------------------------------------
// Rooms

async function loadRooms() {
  const load = { updated: new Map(), removed: new Set() };
  state.roomsLoad = load;
  try {
    const { rooms } = await http('GET', '/v1/rooms?limit=100');
    if (state.roomsLoad !== load) return; // a newer load (or a logout) took over
    state.rooms = new Map(rooms.map((r) => [r.id, r]));
    // Events that came while the list was read are at least as new as it.
    for (const [id, view] of load.updated) state.rooms.set(id, view);
    for (const id of load.removed) state.rooms.delete(id);
    renderRooms();
  } finally {
    if (state.roomsLoad === load) state.roomsLoad = null;
  }
}

function onRoomUpdated(view) {
  state.rooms.set(view.id, view);
  state.roomsLoad?.updated.set(view.id, view);
  state.roomsLoad?.removed.delete(view.id);
  renderRooms();
}

function onRoomRemoved({ roomId }) {
  state.rooms.delete(roomId);
  state.roomsLoad?.updated.delete(roomId);
  state.roomsLoad?.removed.add(roomId);
  renderRooms();
  if (roomId === state.current) {
    closeRoom();
    log('you are no longer a member of the open room');
  }
}

function renderRooms() {
  const rooms = [...state.rooms.values()].sort(
    (a, b) => b.lastActivityAt.localeCompare(a.lastActivityAt) || b.id.localeCompare(a.id),
  );
  $('rooms').replaceChildren(
    ...rooms.map((r) => {
      const li = el(
        'li',
        { className: r.id === state.current ? 'active' : '', title: `${r.kind} · ${r.members.length} members` },
        el('span', { className: 'name', textContent: r.name }),
        el('span', { className: 'unread', textContent: String(r.unreadCount) }),
      );
      li.dataset.roomId = r.id;
      li.querySelector('.unread').dataset.count = String(r.unreadCount);
      li.addEventListener('click', () => openRoom(r.id));
      return li;
    }),
  );
  const open = state.rooms.get(state.current);
  if (open) $('room-title').textContent = open.name;
}

/** A sidebar form that creates (or finds) a room from its one field, then opens it. */
function roomForm(formId, inputId, request) {
  $(formId).addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('side-error');
    try {
      const { room } = await request($(inputId).value.trim());
      $(inputId).value = '';
      onRoomUpdated(room);
      await openRoom(room.id);
    } catch (err) {
      showError('side-error', err);
    }
  });
}

roomForm('new-room', 'new-room-name', (name) => http('POST', '/v1/rooms', { name }));
roomForm('new-dm', 'dm-user-id', async (userId) => {
  const reply = await http('POST', '/v1/dms', { userId });
  noteInvited(reply);
  return reply;
});

/** Say so when an add invited people rather than adding them. */
function noteInvited({ room, invited }) {
  if (invited?.length) log(`${room.name}: invited ${invited.map(userLabel).join(', ')}; they join when they accept`);
}

// ---------------------------------------------------------------------------
// Invitations (people who chose to be asked before being added)

async function loadInvitations() {
  const { invitations } = await http('GET', '/v1/invitations');
  state.invitations = new Map(invitations.map((i) => [i.roomId, i]));
  renderInvitations();
  const me = await http('GET', '/v1/me');
  $('add-anyone').checked = me.settings.addPolicy === 'anyone';
}

function renderInvitations() {
  const list = [...state.invitations.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  $('invitations-box').hidden = list.length === 0;
  $('invitations').replaceChildren(
    ...list.map((inv) => {
      const accept = el('button', { type: 'button', className: 'accept', textContent: 'Accept' });
      const decline = el('button', { type: 'button', className: 'decline', textContent: 'Decline' });
      const li = el(
        'li',
        {},
        el('span', { className: 'name', textContent: inv.kind === 'dm' ? `message from ${inv.name}` : inv.name }),
        el('div', { className: 'row' }, accept, decline),
      );
      li.dataset.roomId = inv.roomId;
      accept.addEventListener('click', () => answerInvitation(inv.roomId, 'accept'));
      decline.addEventListener('click', () => answerInvitation(inv.roomId, 'decline'));
      return li;
    }),
  );
}

async function answerInvitation(roomId, verb) {
  showError('side-error');
  try {
    const reply = await http('POST', `/v1/invitations/${roomId}/${verb}`);
    state.invitations.delete(roomId);
    renderInvitations();
    if (reply?.room) {
      onRoomUpdated(reply.room);
      await openRoom(roomId);
    }
  } catch (err) {
    showError('side-error', err);
  }
}

$('add-anyone').addEventListener('change', async (e) => {
  showError('side-error');
  try {
    await http('PATCH', '/v1/me/settings', { addPolicy: e.target.checked ? 'anyone' : 'invite' });
  } catch (err) {
    e.target.checked = !e.target.checked;
    showError('side-error', err);
  }
});

$('add-member').addEventListener('submit', async (e) => {
  e.preventDefault();
  showError('room-error');
  try {
    const reply = await http('POST', `/v1/rooms/${state.current}/members`, {
      userIds: [$('member-id').value.trim()],
    });
    $('member-id').value = '';
    onRoomUpdated(reply.room);
    log(`${reply.room.name}: ${reply.room.members.length} members`);
    noteInvited(reply);
  } catch (err) {
    showError('room-error', err);
  }
});

// ---------------------------------------------------------------------------
// The open room

function closeRoom() {
  state.opening += 1;
  state.current = null;
  state.messages.clear();
  state.pending.clear();
  state.typers.clear();
  $('messages').replaceChildren();
  $('typing').textContent = '';
  $('room').dataset.roomId = '';
  delete $('room').dataset.loaded;
  $('room-open').hidden = true;
  $('room-empty').hidden = false;
}

/**
 * Open a room: join its live events through the library first, then read the
 * history up to the join's seq. Everything up to `ack.seq` is in the history,
 * everything after it arrives live, so nothing falls between the two.
 */
async function openRoom(roomId) {
  if (roomId === state.current) return;
  const previous = state.current;
  closeRoom();
  const gen = state.opening;
  const client = state.client;
  if (previous) client.leaveRoom(previous).catch(() => {});
  state.current = roomId;
  $('room').dataset.roomId = roomId;
  $('room-open').hidden = false;
  $('room-empty').hidden = true;
  showError('room-error');
  renderRooms();
  try {
    const ack = await client.joinRoom(roomId);
    if (gen !== state.opening) return;
    await loadHistory(roomId, ack.seq, gen);
    if (gen !== state.opening) return;
    $('room').dataset.loaded = 'true';
    if (ack.seq > 0) markRead(roomId, ack.seq);
    $('message-input').focus();
  } catch (err) {
    if (gen === state.opening) showError('room-error', err);
  }
}

/** The latest page of history up to `seq`; a message already shown live stays as it is. */
async function loadHistory(roomId, seq, gen) {
  if (seq <= 0) return;
  const { messages } = await http('GET', `/v1/rooms/${roomId}/messages?beforeSeq=${seq + 1}&limit=${HISTORY_PAGE}`);
  if (gen !== state.opening) return;
  for (const m of messages) upsertMessage(m, false);
  const first = messages[0]?.seq ?? 1;
  if (first > 1 && !$('messages').querySelector('.older')) {
    $('messages').prepend(el('li', { className: 'older hint', textContent: `${first - 1} earlier messages not shown` }));
  }
}

function onMessage(m) {
  upsertMessage(m, true);
  if (m.roomId === state.current && m.senderId !== state.session.user.id) markRead(m.roomId, m.seq);
}

function markRead(roomId, seq) {
  if (document.visibilityState === 'visible') state.client.markRead(roomId, seq).catch(() => {});
}

document.addEventListener('visibilitychange', () => {
  const room = state.rooms.get(state.current);
  if (room && room.unreadCount > 0) markRead(room.id, room.lastSeq);
});

/**
 * Show `m` in the open room, in seq order, once. `live`: it came as an event
 * (newer than, or as new as, any history read for the room).
 */
function upsertMessage(m, live) {
  if (m.roomId !== state.current) return;
  let entry = state.messages.get(m.id);
  if (entry?.live && !live) return;
  if (!entry) {
    entry = { li: el('li'), live };
    state.messages.set(m.id, entry);
    insertBySeq(entry.li, m.seq);
  }
  entry.live ||= live;
  fillMessage(entry.li, m);
  const sent = m.senderId === state.session.user.id && state.pending.get(m.clientMsgId);
  if (sent) {
    sent.remove();
    state.pending.delete(m.clientMsgId);
  }
}

function insertBySeq(li, seq) {
  li.dataset.seq = String(seq);
  const list = $('messages');
  // Pending messages (no seq yet) stay last.
  let after = list.lastElementChild;
  while (after && (after.dataset.seq === undefined || Number(after.dataset.seq) > seq)) {
    if (after.classList.contains('older')) break;
    after = after.previousElementSibling;
  }
  if (after) after.after(li);
  else list.prepend(li);
  list.scrollTop = list.scrollHeight;
}

function fillMessage(li, m) {
  li.dataset.id = m.id;
  li.className = [m.senderId === state.session.user.id && 'mine', m.deletedAt && 'deleted'].filter(Boolean).join(' ');
  const sender = el('span', { className: 'sender', textContent: userLabel(m.senderId), title: `${m.senderId} (click: use this id)` });
  sender.addEventListener('click', () => {
    $('member-id').value = m.senderId;
    $('dm-user-id').value = m.senderId;
  });
  const when = new Date(m.createdAt).toLocaleTimeString();
  li.replaceChildren(
    el('span', { className: 'meta' }, `#${m.seq} `, sender, ` ${when}${m.editedAt ? ' (edited)' : ''}`),
    el('span', { className: 'body', textContent: m.deletedAt ? 'message deleted' : m.body }),
  );
}

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('message-input');
  const body = input.value.trim();
  const roomId = state.current;
  if (!body || !roomId) return;
  input.value = '';
  const clientMsgId = randomId();
  const li = el('li', { className: 'pending' }, el('span', { className: 'meta', textContent: 'sending… ' }), el('span', { className: 'body', textContent: body }));
  li.dataset.clientMsgId = clientMsgId;
  state.pending.set(clientMsgId, li);
  $('messages').append(li);
  $('messages').scrollTop = $('messages').scrollHeight;
  state.lastTypingSent = 0;
  state.client.typing(roomId, false).catch(() => {});
  try {
    // The ACK says it was accepted; the message itself comes back as receiveMessage.
    await state.client.sendMessage(roomId, body, clientMsgId);
  } catch (err) {
    if (state.pending.get(clientMsgId) === li) li.classList.add('failed');
    showError('room-error', err);
  }
});

$('message-input').addEventListener('input', () => {
  const now = Date.now();
  if (!state.current || !$('message-input').value || now - state.lastTypingSent < TYPING_REFRESH_MS) return;
  state.lastTypingSent = now;
  state.client.typing(state.current, true).catch(() => {});
});

function onTyping({ roomId, userId, typing }) {
  if (roomId !== state.current) return;
  if (typing) state.typers.add(userId);
  else state.typers.delete(userId);
  const names = [...state.typers].map(userLabel);
  $('typing').textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
}

// ---------------------------------------------------------------------------
// Start: resume the tab's session if it is still valid.

const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
if (saved?.token) {
  state.session = saved;
  http('GET', '/v1/me')
    .then(({ user }) => start({ ...state.session, user }))
    .catch((err) => {
      // A 401 has signed out already; anything else (the server is down) too.
      if (state.session) logout(`Could not resume the session: ${err.message}`);
    });
} else {
  showAuth();
}
