// Helpers for the chat-domain tests (issue #5): users with a connected socket,
// a recorder of every event a socket receives, bounded waits on events, and
// assertion shortcuts for HTTP answers and ACKs.
//
// Same rule as lib/server.mjs: synchronise on signals only. Every timer here
// is a failure deadline; "nothing arrived" is proven with a later sentinel
// event on the same socket, never by sleeping.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, connect, createRoom, emitWithAck, register, withDeadline } from './server.mjs';

/** Default deadline for an event that should arrive promptly. */
export const EVENT_MS = 3000;

/** A fresh clientMsgId. */
export function cid(prefix = 'c') {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

/**
 * Resolve with the next `name` event received by `socket` *after this call*
 * whose payload matches `pred`; reject after `ms` with a message naming what
 * was awaited.
 */
export function nextEvent(socket, name, pred = () => true, ms = EVENT_MS, what = 'matching payload') {
  let handler;
  const p = new Promise((resolve) => {
    handler = (payload) => {
      if (pred(payload)) resolve(payload);
    };
    socket.on(name, handler);
  });
  return withDeadline(p, ms, `'${name}' ${what} not received`).finally(() => socket.off(name, handler));
}

/**
 * Records every event a socket receives (any name, in arrival order) from the
 * moment it is created. `waitFor` looks at what already arrived, then waits.
 */
export class Tape {
  constructor(socket, label = 'socket') {
    this.label = label;
    this.entries = []; // {event, payload, at}
    this.waiters = new Set();
    socket.onAny((event, payload) => {
      const entry = { event, payload, at: Date.now() };
      this.entries.push(entry);
      for (const w of [...this.waiters]) {
        if (w.match(entry)) {
          this.waiters.delete(w);
          w.resolve(entry);
        }
      }
    });
  }

  /** Payloads of `event` (optionally filtered), in arrival order. */
  all(event, pred = () => true) {
    return this.entries.filter((e) => e.event === event && pred(e.payload)).map((e) => e.payload);
  }

  /** Entries (`{event,payload,at}`) after position `mark` (see `mark()`). */
  since(mark) {
    return this.entries.slice(mark);
  }

  /** The current position, for `since`/`waitFor(…, {after})`. */
  mark() {
    return this.entries.length;
  }

  /** Every event name received so far with its payload, compact, for failure messages. */
  describe() {
    return this.entries.map((e) => `${e.event} ${JSON.stringify(e.payload)}`).join('\n  ') || '(nothing)';
  }

  /**
   * Resolve with the payload of the first `event` matching `pred`, looking at
   * entries from position `after` (default 0) on, then waiting up to `ms`.
   * Returns the payload; `waitForEntry` returns `{event,payload,at}`.
   */
  async waitFor(event, pred = () => true, ms = EVENT_MS, what = 'matching payload', after = 0) {
    return (await this.waitForEntry(event, pred, ms, what, after)).payload;
  }

  waitForEntry(event, pred = () => true, ms = EVENT_MS, what = 'matching payload', after = 0) {
    const match = (e) => e.event === event && pred(e.payload);
    const found = this.entries.slice(after).find(match);
    if (found) return Promise.resolve(found);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { match, resolve };
      this.waiters.add(waiter);
    });
    return withDeadline(
      p,
      ms,
      () => `${this.label}: '${event}' ${what} not received; got:\n  ${this.describe()}`,
    ).finally(() => this.waiters.delete(waiter));
  }
}

/**
 * Register a user, connect a socket (over `$E2E_TRANSPORT`'s transports) and, unless
 * `joinUser: false`, join its user channel. Returns `{user, token, socket, tape}`.
 */
export async function newClient(base, { joinUser = true, label } = {}) {
  const { user, token } = await register(base);
  const client = { user, token };
  Object.assign(client, await connectAs(base, client, { joinUser, label: label ?? user.username }));
  return client;
}

/** Another socket for an existing user. Returns `{socket, tape}`. */
export async function connectAs(base, who, { joinUser = true, label } = {}) {
  const socket = await connect(base, who.token);
  const tape = new Tape(socket, label ?? who.user?.username ?? 'socket');
  if (joinUser) ackOk(await emitWithAck(socket, 'joinUser', {}), 'joinUser');
  return { socket, tape };
}

/** Assert an ACK is `{ok:true,…}`; returns it. */
export function ackOk(ack, what = 'ack') {
  assert.equal(ack?.ok, true, `${what}: expected {ok:true}, got ${JSON.stringify(ack)}`);
  return ack;
}

/** Assert an ACK is `{ok:false, error:{code, message}}` with `code`; returns it. */
export function ackError(ack, code, what = 'ack') {
  assert.equal(ack?.ok, false, `${what}: expected {ok:false}, got ${JSON.stringify(ack)}`);
  assert.equal(ack?.error?.code, code, `${what}: expected code ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(typeof ack?.error?.message, 'string', `${what}: error.message is not a string`);
  return ack;
}

/** `joinRoom` and assert `{ok:true, seq}`; returns the ACK. */
export async function joinRoom(socket, roomId, what = `joinRoom ${roomId}`) {
  const ack = ackOk(await emitWithAck(socket, 'joinRoom', { roomId }), what);
  assert.equal(typeof ack.seq, 'number', `${what}: ACK has no numeric seq: ${JSON.stringify(ack)}`);
  return ack;
}

/** Call the API and assert the status; returns the JSON body. */
export async function call(base, method, path, token, body, status, what = `${method} ${path}`) {
  const res = await api(base, method, path, token, body);
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status} ${res.text}`);
  return res.json;
}

/** Assert an HTTP answer is the error `status` / `code`; returns the response. */
export function expectError(res, status, code, what) {
  const where = `${what}: expected ${status} ${code}, got ${res.status} ${res.text}`;
  assert.equal(res.status, status, where);
  assert.equal(res.json?.error?.code, code, where);
  assert.equal(typeof res.json?.error?.message, 'string', where);
  return res;
}

/** Create a group room (201) with `memberIds`; returns the RoomView. */
export function makeRoom(base, owner, name = 'room', members = []) {
  return createRoom(base, owner.token, name, members.map((m) => m.user.id));
}

/** Post over REST (201); returns the message. `extra` may hold replyTo. */
export async function say(base, who, roomId, body, extra = {}) {
  const json = await call(
    base,
    'POST',
    `/v1/rooms/${roomId}/messages`,
    who.token,
    { clientMsgId: cid(), body, ...extra },
    201,
    `${who.user.username} posts "${body}"`,
  );
  return json.message;
}

/** Full history ascending (afterSeq paging, limit 200). */
export async function history(base, who, roomId) {
  const out = [];
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const page = await call(
      base,
      'GET',
      `/v1/rooms/${roomId}/messages?afterSeq=${after}&limit=200`,
      who.token,
      undefined,
      200,
      'history page',
    );
    out.push(...page.messages);
    if (page.messages.length < 200) return out;
    after = page.messages[page.messages.length - 1].seq;
  }
  throw new Error('history: more than 100 pages');
}

/** GET /v1/rooms/{id} (200) as `who`; returns the RoomView. */
export async function roomView(base, who, roomId) {
  return (await call(base, 'GET', `/v1/rooms/${roomId}`, who.token, undefined, 200, 'GET room')).room;
}

/** All of `who`'s rooms (GET /v1/rooms, following `next`). */
export async function allRooms(base, who, limit = 100) {
  const out = [];
  let before = null;
  for (let i = 0; i < 100; i++) {
    const q = `?limit=${limit}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
    const page = await call(base, 'GET', `/v1/rooms${q}`, who.token, undefined, 200, 'GET /v1/rooms');
    out.push(...page.rooms);
    if (page.next === null) return out;
    before = page.next;
  }
  throw new Error('room list: more than 100 pages');
}

/** Path of a reaction. */
export function reactionPath(roomId, messageId, emoji) {
  return `/v1/rooms/${roomId}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`;
}

/** A sorted copy of an array of ids. */
export const sorted = (ids) => [...ids].sort();

/** Predicate: payload's `roomId` equals `roomId`. */
export const inRoom = (roomId) => (p) => p?.roomId === roomId;

/** Predicate: a room-like payload (RoomView) with this `id`. */
export const roomIs = (roomId) => (p) => p?.id === roomId;
