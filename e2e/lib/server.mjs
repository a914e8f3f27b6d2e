// Test harness: starts a real `roomcast serve` process on a free loopback port
// with a fresh SQLite database, and offers small HTTP / Socket.IO helpers.
//
// Synchronisation rule for the whole suite: wait on signals (process output,
// HTTP answers, Socket.IO events and ACKs). Timers are only ever used as
// failure deadlines (see `withDeadline`), never as "give it a moment" waits.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before } from 'node:test';
import { io } from 'socket.io-client';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Path of the server binary: $ROOMCAST_BIN, else ../target/debug/roomcast relative to e2e/. */
export const ROOMCAST_BIN = process.env.ROOMCAST_BIN
  ? path.resolve(E2E_DIR, process.env.ROOMCAST_BIN)
  : path.resolve(E2E_DIR, '..', 'target', 'debug', 'roomcast');

const READY_RE = /listening on http:\/\/127\.0\.0\.1:(\d+)/;
// `roomcast api` prints its internal listener first.
const INTERNAL_RE = /internal routes on http:\/\/127\.0\.0\.1:(\d+)/;
const STARTUP_DEADLINE_MS = 30_000;
const SHUTDOWN_DEADLINE_MS = 10_000;
const OUTPUT_CAP = 64 * 1024;

/**
 * Reject with `message` (a string, or a function building it at expiry) if
 * `promise` has not settled within `ms`. The timer is a failure deadline only;
 * it is cleared as soon as the promise settles.
 */
/**
 * A logged room event's payload without its `eventSeq`, after checking it
 * carries one (a positive integer): what the REST routes return for the same
 * object. Every stored room event (message, edit, delete, reaction, read
 * marker) carries its position in the room's event log.
 */
export function live(payload, what = 'event') {
  if (!(Number.isInteger(payload?.eventSeq) && payload.eventSeq > 0)) {
    throw new Error(`${what}: no eventSeq in ${JSON.stringify(payload)}`);
  }
  const { eventSeq: _, ...rest } = payload;
  return rest;
}

export function withDeadline(promise, ms, message) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const text = typeof message === 'function' ? message() : message;
      reject(new Error(`${text} (no signal within ${ms} ms)`));
    }, ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function capped(buf, chunk) {
  const next = buf + chunk;
  return next.length > OUTPUT_CAP ? next.slice(next.length - OUTPUT_CAP) : next;
}

/**
 * Start `roomcast serve` (with `extraEnv` added to its environment, e.g.
 * `ROOMCAST_CHAT__REPLAY_BUFFER`) and resolve once it printed its "listening on" line.
 * Returns `{ base, port, proc, stdout(), stderr(), stop() }`.
 */
export async function startServer(extraEnv = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'roomcast-e2e-'));
  const dbUrl = `sqlite://${path.join(dataDir, 'roomcast.db')}`;
  return startProcess(['serve', '--listen', '127.0.0.1:0', '--database-url', dbUrl], extraEnv, dataDir);
}

/**
 * Start `roomcast <args…>` with `extraEnv` added to the environment, resolve once
 * it printed its "listening on" line. `dataDir` (optional) is removed on stop.
 * Returns `{ base, port, internalBase, internalPort, proc, stdout(), stderr(), exited(), stop() }`.
 */
export async function startProcess(args, extraEnv = {}, dataDir = null) {
  if (!existsSync(ROOMCAST_BIN)) {
    throw new Error(
      `roomcast binary not found at ${ROOMCAST_BIN}. ` +
        'Build it first with `cargo build -p roomcast` (or set ROOMCAST_BIN).',
    );
  }
  // Users let anyone add them (`rooms.default_add_policy = "anyone"`): the
  // suites written before consent add members and open DMs directly. The
  // consent suite (invitations.test.mjs) passes `PRODUCT_DEFAULTS`.
  const env = { ...process.env, ROOMCAST_LOG: 'warn', ...DIRECT_ADDS, ...extraEnv };
  // A `null` in `extraEnv` removes the variable: the server's own default applies.
  for (const [k, v] of Object.entries(env)) if (v === null) delete env[k];
  delete env.RUST_LOG;
  // The harness's own ROOMCAST_ variables are not roomcast settings (the
  // server would warn about each, as about any unknown ROOMCAST_ variable).
  delete env.ROOMCAST_BIN;
  for (const k of Object.keys(env)) if (k.startsWith('ROOMCAST_TEST_')) delete env[k];

  const proc = spawn(ROOMCAST_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });

  let out = '';
  let err = '';
  let exited = null; // {code, signal} once the process is gone
  const exitPromise = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  // Always drain both pipes so the server can never block on a full pipe.
  proc.stderr.on('data', (chunk) => {
    err = capped(err, chunk);
  });

  const describeOutput = () =>
    `--- server stdout ---\n${out || '(empty)'}\n--- server stderr ---\n${err || '(empty)'}`;

  const ready = new Promise((resolve, reject) => {
    let seen = '';
    proc.stdout.on('data', (chunk) => {
      out = capped(out, chunk);
      if (seen === null) return;
      seen += chunk;
      const m = READY_RE.exec(seen);
      if (m) {
        seen = null;
        resolve(Number(m[1]));
      }
    });
    proc.once('error', (e) => reject(new Error(`could not start ${ROOMCAST_BIN}: ${e.message}`)));
    exitPromise.then(({ code, signal }) =>
      reject(
        new Error(
          `roomcast exited (code ${code}, signal ${signal}) before printing ` +
            `"listening on http://127.0.0.1:<port>" on stdout\n${describeOutput()}`,
        ),
      ),
    );
  });

  let port;
  try {
    port = await withDeadline(
      ready,
      STARTUP_DEADLINE_MS,
      `roomcast did not print "listening on http://127.0.0.1:<port>" on stdout`,
    );
  } catch (e) {
    if (!exited) proc.kill('SIGKILL');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (!/exited/.test(e.message)) e.message += `\n${describeOutput()}`;
    throw e;
  }

  const base = `http://127.0.0.1:${port}`;
  const internal = INTERNAL_RE.exec(out);
  const internalPort = internal ? Number(internal[1]) : null;
  return {
    base,
    port,
    /** `roomcast api`: its internal listener (the realtime tier's `realtime.api_url`). */
    internalBase: internalPort ? `http://127.0.0.1:${internalPort}` : null,
    internalPort,
    proc,
    stdout: () => out,
    stderr: () => err,
    /** `{code, signal}` if the process has exited, else null. */
    exited: () => exited,
    /** SIGTERM, wait for exit (SIGKILL after a deadline), remove the data dir. */
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        try {
          await withDeadline(exitPromise, SHUTDOWN_DEADLINE_MS, 'roomcast did not exit after SIGTERM');
        } catch (e) {
          proc.kill('SIGKILL');
          await exitPromise;
          if (dataDir) await rm(dataDir, { recursive: true, force: true });
          throw new Error(`${e.message}\n${describeOutput()}`);
        }
      }
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      return exited;
    },
  };
}

/**
 * The environment of a server with every cap and rate limit off
 * (`limits.enabled = false`): for load tests, and for files whose setup
 * (hundreds of posts, rooms or users from one address) would otherwise
 * exceed limits that are not what they test. Every other test runs with the
 * limits at their defaults.
 */
export const NO_LIMITS = Object.freeze({ ROOMCAST_LIMITS__ENABLED: 'false' });

/** What every server the harness starts gets unless told otherwise (see `startProcess`). */
const DIRECT_ADDS = Object.freeze({ ROOMCAST_ROOMS__DEFAULT_ADD_POLICY: 'anyone' });

/** Add to `extraEnv` for a server at the product's defaults: users are invited, not added. */
export const PRODUCT_DEFAULTS = Object.freeze({ ROOMCAST_ROOMS__DEFAULT_ADD_POLICY: null });

/**
 * Register `before`/`after` hooks in the calling test file: one server per file
 * (with `extraEnv` added to its environment, e.g. `NO_LIMITS`).
 * Returns a context whose `base` is set once the server is up. After each test
 * the server must still be running (a crash fails that test with its stderr).
 */
export function useServer(extraEnv = {}) {
  const ctx = { server: null, base: null };
  before(async () => {
    ctx.server = await startServer(extraEnv);
    ctx.base = ctx.server.base;
  });
  afterEach(() => {
    const gone = ctx.server && ctx.server.exited();
    if (gone) {
      throw new Error(
        `roomcast exited during the test (code ${gone.code}, signal ${gone.signal})\n` +
          `--- server stderr ---\n${ctx.server.stderr() || '(empty)'}`,
      );
    }
  });
  after(async () => {
    closeAllSockets();
    if (!ctx.server) return;
    const stderr = ctx.server.stderr();
    await ctx.server.stop();
    if (stderr.trim()) {
      process.stderr.write(`--- roomcast stderr (ROOMCAST_LOG=warn) ---\n${stderr}\n`);
    }
  });
  return ctx;
}

// ---------------------------------------------------------------------------
// HTTP helpers

/** A fresh valid username: `u_<12 hex>` (3–32 chars of [A-Za-z0-9_.-]). */
export function uniqueName(prefix = 'u') {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export const PASSWORD = 'correct-horse-battery';

/**
 * Call the HTTP API. `body` may be an object (sent as JSON) or a string (sent
 * verbatim as application/json, for malformed-JSON tests).
 * Resolves to `{ status, json, text, headers }`; `json` is null when the body is not JSON.
 */
export async function api(base, method, urlPath, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(base + urlPath, { method, headers, body: payload });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** Register a user; throws unless the server answers 201. Resolves to `{ user, token, password }`. */
export async function register(base, username = uniqueName(), password = PASSWORD) {
  const res = await api(base, 'POST', '/v1/auth/register', null, { username, password });
  if (res.status !== 201) {
    throw new Error(`register ${username}: expected 201, got ${res.status} ${res.text}`);
  }
  return { user: res.json.user, token: res.json.token, refreshToken: res.json.refreshToken, password };
}

/** Create a room as `token`'s user; throws unless 201. Resolves to the room object. */
export async function createRoom(base, token, name, memberIds = []) {
  const res = await api(base, 'POST', '/v1/rooms', token, { name, memberIds });
  if (res.status !== 201) {
    throw new Error(`create room ${name}: expected 201, got ${res.status} ${res.text}`);
  }
  return res.json.room;
}

/** Post a message over REST. Resolves to the raw `{status, json, text}` answer. */
export function postMessage(base, token, roomId, body, clientMsgId = `c-${randomBytes(8).toString('hex')}`) {
  return api(base, 'POST', `/v1/rooms/${roomId}/messages`, token, { clientMsgId, body });
}

// ---------------------------------------------------------------------------
// Socket.IO helpers

const openSockets = new Set();

/**
 * The transports every socket uses unless its test names its own, from
 * `$E2E_TRANSPORT`: `websocket` (websocket only), `polling` (long-polling
 * only) or `upgrade` (the client's default: polling, upgraded to websocket;
 * also when unset). `npm test` runs the suite once in each mode.
 */
export const TRANSPORT = process.env.E2E_TRANSPORT || 'upgrade';
const DEFAULT_TRANSPORTS = { websocket: ['websocket'], polling: ['polling'], upgrade: undefined };
if (!(TRANSPORT in DEFAULT_TRANSPORTS)) {
  throw new Error(`E2E_TRANSPORT=${TRANSPORT}: expected websocket, polling or upgrade`);
}

/** Create a socket without waiting for it (tracked so `closeAllSockets` can close it). */
export function makeSocket(base, token, opts = {}) {
  const { transports = DEFAULT_TRANSPORTS[TRANSPORT], ...rest } = opts;
  const socket = io(base, {
    auth: token === undefined ? {} : { token },
    ...(transports ? { transports } : {}),
    reconnection: false,
    forceNew: true,
    ...rest,
  });
  openSockets.add(socket);
  socket.once('disconnect', () => openSockets.delete(socket));
  return socket;
}

/**
 * Connect with `auth:{token}`; resolves with the socket on 'connect',
 * rejects with the `connect_error` Error (or after a 10 s deadline).
 * Pass `token === undefined` to send no token at all.
 */
export function connect(base, token, opts = {}) {
  const socket = makeSocket(base, token, opts);
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      openSockets.delete(socket);
      reject(err);
    });
  });
  return withDeadline(connected, 10_000, 'socket did not connect or report connect_error').catch((e) => {
    socket.close();
    openSockets.delete(socket);
    throw e;
  });
}

/** Emit with an ACK; rejects if no ACK arrives within 5 s. */
export function emitWithAck(socket, event, ...args) {
  return socket.timeout(5000).emitWithAck(event, ...args);
}

/** Close every socket created through this module. */
export function closeAllSockets() {
  for (const s of openSockets) s.close();
  openSockets.clear();
}

/**
 * Records every `event` a socket receives from the moment it is created, so
 * tests can wait for a particular payload and later assert on everything that
 * arrived (e.g. "exactly once", "nothing for that room").
 */
export class Inbox {
  constructor(socket, event) {
    this.event = event;
    this.items = [];
    this.waiters = new Set();
    socket.on(event, (payload) => {
      this.items.push(payload);
      for (const w of [...this.waiters]) {
        if (w.pred(payload)) {
          this.waiters.delete(w);
          w.resolve(payload);
        }
      }
    });
  }

  /** Resolve with the first received (or already received) payload matching `pred`; fail after `ms`. */
  waitFor(pred, ms = 2000, what = 'matching payload') {
    const found = this.items.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { pred, resolve };
      this.waiters.add(waiter);
    });
    return withDeadline(p, ms, `'${this.event}' ${what} not received`).finally(() =>
      this.waiters.delete(waiter),
    );
  }

  /** Resolve once at least `n` payloads have arrived; fail after `ms`. */
  waitForCount(n, ms = 2000) {
    if (this.items.length >= n) return Promise.resolve(this.items);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { pred: () => this.items.length >= n, resolve: () => resolve(this.items) };
      this.waiters.add(waiter);
    });
    return withDeadline(
      p,
      ms,
      () => `expected ${n} '${this.event}' events, got ${this.items.length}`,
    ).finally(() => this.waiters.delete(waiter));
  }
}

/** Assert-friendly shape check for `{error:{code,message}}` bodies. */
export function errorOf(res) {
  return res.json && typeof res.json === 'object' ? res.json.error : undefined;
}
