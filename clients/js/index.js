// @roomcast/client: a thin layer over the official socket.io-client that keeps
// a roomcast client's view of its rooms exact across reconnects.
//
// - Tracks, per joined room, the last `eventSeq` handled.
// - After any reconnect (a network drop, a server restart, a server-initiated
//   disconnect, after which socket.io-client does not reconnect by itself) it
//   rejoins every room with `sinceEventSeq`: the server replays what was missed.
// - Drops an event already handled, and resyncs on a gap, so the application
//   sees each room event once, in order.
// - When the server cannot replay a gap (`recovered: false`) it emits
//   `reload` for that room: fetch the room again through REST.
// - After a reconnect the server recovered by itself (connection state
//   recovery: `socket.recovered`), nothing needs rejoining: the server put
//   the socket back in its rooms and is replaying what was missed.
// - On every connect that was not recovered, the user channel is joined with
//   `{rooms: true}`: the room list (unread counts included) as of now comes
//   back as a `rooms` event, so nothing missed while away stays stale.
//
// - Given the session's `refreshToken`, it keeps its access token fresh by
//   itself: it refreshes ahead of expiry (one refresh at a time: a refresh
//   token is good for one use), reconnects with the current token, and, if
//   the server refuses the token as expired, refreshes and connects again.
//   Each new pair of tokens is emitted as `tokens`.
//
// socket.io-client is passed in (`io`), so the application's own copy is used.

/** Room events carrying an `eventSeq`, delivered once and in order. */
export const LOGGED_EVENTS = [
  'receiveMessage',
  'messageUpdated',
  'messageDeleted',
  'reactionAdded',
  'reactionRemoved',
  'messageReadUpdate',
];

/** Per-user and ephemeral events, passed through as they come. */
export const OTHER_EVENTS = [
  'roomUpdated',
  'roomRemoved',
  'typing',
  'presence',
  'invitationReceived',
  'invitationRemoved',
  'sessionRevoked',
];

/** A failed call: `code` is roomcast's error code (`bad_request`, `forbidden`, …). */
export class RoomcastError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'RoomcastError';
    this.code = code;
  }
}

async function post(baseUrl, path, body, fetchImpl = globalThis.fetch) {
  const res = await fetchImpl(new URL(path, baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new RoomcastError(json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${res.status}`);
  }
  return json;
}

/** `POST /v1/auth/login` → `{ token, user }`. */
export function login(baseUrl, username, password, { fetch } = {}) {
  return post(baseUrl, '/v1/auth/login', { username, password }, fetch);
}

/**
 * `POST /v1/auth/refresh` → `{ token, refreshToken, user, expiresIn }`: the
 * refresh token is used up (send the new one next time; sending a used one
 * again ends the session).
 */
export function refresh(baseUrl, refreshToken, { fetch } = {}) {
  return post(baseUrl, '/v1/auth/refresh', { refreshToken }, fetch);
}

/** `POST /v1/auth/register` → `{ token, user }`. */
export function register(baseUrl, username, password, { fetch } = {}) {
  return post(baseUrl, '/v1/auth/register', { username, password }, fetch);
}

/**
 * One connection to roomcast. Events: every name in `LOGGED_EVENTS` and
 * `OTHER_EVENTS` (handler gets the payload), plus `reload` (`{roomId,
 * eventSeq}`: the gap could not be replayed; refetch the room), `rooms`
 * (`{rooms, next}`: the room list as of a connect), `connect` (`{recovered}`),
 * `disconnect` (reason) and `error` (an Error from a rejoin).
 */
/** Longest wait a timer can take (setTimeout's limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RoomcastClient {
  #socket;
  #url;
  #token;
  #refreshToken;
  #refreshing = null; // the refresh in flight, if any
  #timer = null;
  #rooms = new Map(); // roomId → last eventSeq handled
  #pending = new Map(); // roomId → events received before its first join's ACK
  #handlers = new Map(); // event → Set<handler>
  #user;
  #closed = false;

  /**
   * @param {object} o
   * @param {Function} o.io `io` from socket.io-client
   * @param {string} o.url the server's base URL
   * @param {string} o.token a roomcast access token (see `login`)
   * @param {string} [o.refreshToken] its session's refresh token: the client then refreshes by itself
   * @param {number} [o.expiresIn] seconds the access token lives (`login`'s `expiresIn`)
   * @param {boolean} [o.joinUser=true] also join the user channel (room list, presence)
   * @param {object} [o.socketOptions] more socket.io-client options (e.g. `transports`)
   */
  constructor({ io, url, token, refreshToken, expiresIn, joinUser = true, socketOptions = {} }) {
    if (typeof io !== 'function') throw new TypeError('pass `io` from socket.io-client');
    this.#user = joinUser;
    this.#url = url;
    this.#token = token;
    this.#refreshToken = refreshToken;
    // A function: every (re)connection sends the token current then.
    const auth = (cb) => cb({ token: this.#token });
    this.#socket = io(url, { ...socketOptions, auth, autoConnect: false });
    if (refreshToken && expiresIn) this.#schedule(expiresIn);
    for (const name of LOGGED_EVENTS) this.#socket.on(name, (p) => this.#logged(name, p));
    for (const name of OTHER_EVENTS) this.#socket.on(name, (p) => this.#emit(name, p));
    this.#socket.on('connect', () => this.#connected());
    this.#socket.on('disconnect', (reason) => {
      this.#emit('disconnect', reason);
      // The server closed this socket on purpose (e.g. a realtime node
      // draining): socket.io-client leaves it closed; come back.
      if (reason === 'io server disconnect' && !this.#closed) this.#socket.connect();
    });
  }

  /** The current access token (for the application's own REST calls). */
  get token() {
    return this.#token;
  }

  /**
   * Trade the refresh token for new tokens now (at most one refresh at a
   * time: a second call while one runs gets the same result). Resolves
   * with the session (`{token, refreshToken, expiresIn, user}`), also
   * emitted as `tokens`; rejects with a `RoomcastError` (`unauthorized`:
   * the session has ended, sign in again).
   */
  refreshNow() {
    if (!this.#refreshToken) return Promise.reject(new RoomcastError('unauthorized', 'no refresh token'));
    this.#refreshing ??= refresh(this.#url, this.#refreshToken)
      .then((session) => {
        this.#token = session.token;
        this.#refreshToken = session.refreshToken;
        this.#schedule(session.expiresIn);
        this.#emit('tokens', session);
        return session;
      })
      .finally(() => {
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  /** Refresh ahead of the access token's expiry (at 80% of its life, at most a minute before). */
  #schedule(expiresIn) {
    clearTimeout(this.#timer);
    const life = expiresIn * 1000;
    const wait = Math.min(MAX_TIMER_MS, Math.max(500, Math.min(life - 60_000, life * 0.8)));
    this.#timer = setTimeout(() => {
      this.refreshNow().catch((err) => this.#emit('error', err));
    }, wait);
    this.#timer.unref?.();
  }

  /** The underlying socket.io-client socket. */
  get socket() {
    return this.#socket;
  }

  /** Connect; resolves on the first connection, rejects on `connect_error`. */
  connect() {
    return new Promise((resolve, reject) => {
      const ok = () => {
        this.#socket.off('connect_error', fail);
        resolve(this);
      };
      const fail = (err) => {
        this.#socket.off('connect', ok);
        // An expired access token: refresh, and connect once more.
        if (err?.message === 'invalid or expired token' && this.#refreshToken) {
          this.refreshNow().then(() => this.connect().then(resolve, reject), reject);
          return;
        }
        reject(err);
      };
      this.#socket.once('connect', ok);
      this.#socket.once('connect_error', fail);
      this.#socket.connect();
    });
  }

  /** Disconnect for good. */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket.close();
  }

  /** Listen to an event; returns a function that stops listening. */
  on(event, handler) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(handler);
    return () => this.#handlers.get(event)?.delete(handler);
  }

  /** The last `eventSeq` handled in `roomId` (undefined if not joined). */
  lastEventSeq(roomId) {
    return this.#rooms.get(roomId);
  }

  /**
   * Join a room's live events; resolves with the ACK (`{ok, seq, eventSeq}`).
   * With `sinceEventSeq`, what happened after it is replayed first.
   */
  async joinRoom(roomId, { sinceEventSeq } = {}) {
    if (sinceEventSeq !== undefined) {
      this.#rooms.set(roomId, sinceEventSeq);
      const ack = await this.#join(roomId, sinceEventSeq);
      if (ack.recovered === false) this.#rooms.set(roomId, ack.eventSeq);
      return ack;
    }
    // Events may arrive before the ACK says where the room stands: hold them.
    const held = [];
    this.#pending.set(roomId, held);
    try {
      const ack = await this.#join(roomId);
      this.#rooms.set(roomId, ack.eventSeq ?? 0);
      return ack;
    } finally {
      this.#pending.delete(roomId);
      for (const [name, payload] of held) this.#logged(name, payload);
    }
  }

  /** Stop receiving a room's events on this connection. */
  async leaveRoom(roomId) {
    this.#rooms.delete(roomId);
    return this.#ack('leaveRoom', { roomId });
  }

  /** Send a message over the socket (`sendMessage`); resolves with the ACK. */
  sendMessage(roomId, body, clientMsgId = globalThis.crypto.randomUUID(), replyTo) {
    return this.#ack('sendMessage', { roomId, clientMsgId, body, ...(replyTo ? { replyTo } : {}) });
  }

  /** Move the read marker (`markMessageRead`). */
  markRead(roomId, seq) {
    return this.#ack('markMessageRead', { roomId, seq });
  }

  /** Typing indicator. */
  typing(roomId, typing = true) {
    return this.#ack('typing', { roomId, typing });
  }

  async #ack(event, payload) {
    const ack = await this.#socket.timeout(10_000).emitWithAck(event, payload);
    if (!ack?.ok) throw new RoomcastError(ack?.error?.code ?? 'internal', ack?.error?.message ?? 'no answer');
    return ack;
  }

  #join(roomId, sinceEventSeq) {
    const payload = sinceEventSeq === undefined ? { roomId } : { roomId, sinceEventSeq };
    return this.#ack('joinRoom', payload);
  }

  async #connected() {
    const recovered = this.#socket.recovered === true;
    this.#emit('connect', { recovered });
    if (recovered) return;
    try {
      if (this.#user) {
        const { rooms, next } = await this.#ack('joinUser', { rooms: true });
        this.#emit('rooms', { rooms, next });
      }
      await Promise.all([...this.#rooms.keys()].map((roomId) => this.#rejoin(roomId)));
    } catch (err) {
      this.#emit('error', err);
    }
  }

  /** Rejoin `roomId` after what was handled; the server replays the rest. */
  async #rejoin(roomId) {
    const since = this.#rooms.get(roomId);
    if (since === undefined) return;
    const ack = await this.#join(roomId, since);
    if (ack.recovered === false) {
      this.#rooms.set(roomId, ack.eventSeq);
      this.#emit('reload', { roomId, eventSeq: ack.eventSeq });
    }
  }

  #logged(name, payload) {
    const roomId = payload?.roomId;
    const seq = payload?.eventSeq;
    const held = this.#pending.get(roomId);
    if (held) return void held.push([name, payload]);
    const last = this.#rooms.get(roomId);
    if (last === undefined || !Number.isInteger(seq)) return this.#emit(name, payload);
    if (seq <= last) return; // already handled (a replay overlapping the live stream)
    if (seq > last + 1) {
      // Something was skipped: ask for it again instead of showing this out of order.
      this.#rejoin(roomId).catch((err) => this.#emit('error', err));
      return;
    }
    this.#rooms.set(roomId, seq);
    this.#emit(name, payload);
  }

  #emit(event, payload) {
    for (const h of this.#handlers.get(event) ?? []) {
      try {
        h(payload);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
