// Reference server for roomcast benchmarks: the seed architecture's realtime
// tier as users run it today — a plain, untuned Socket.IO v4 server — plus an
// in-memory model of the HTTP API. Speaks the same HTTP API and Socket.IO
// events as roomcast (docs/protocol.md), so the load generator can run the
// same scenarios against both. See README.md for what is and isn't modelled.
//
//   node server.mjs [--host 127.0.0.1] [--port 0]      (port 0 = any free port)

import http from "node:http";
import { randomBytes, randomUUID } from "node:crypto";
import { Server } from "socket.io";

// ---- CLI ------------------------------------------------------------------
function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.split(/=(.*)/s); // accepts --port 0 and --port=0
    const value = inline ?? argv[++i];
    if (flag === "--host" && value) opts.host = value;
    else if (flag === "--port" && /^\d+$/.test(value ?? "")) opts.port = Number(value);
    else {
      console.error(`usage: node server.mjs [--host 127.0.0.1] [--port 0] (bad argument: ${arg})`);
      process.exit(2);
    }
  }
  return opts;
}
const { host, port } = parseArgs(process.argv.slice(2));

// ---- In-memory state ------------------------------------------------------
const users = new Map(); // userId -> { id, username, password }
const usernames = new Map(); // lower-cased username -> userId (unique ignoring case)
const tokens = new Map(); // token -> userId (tokens never expire here)
const rooms = new Map(); // roomId -> { id, name, members, memberSet, lastSeq, createdAt, messages, byClientMsgId }

const publicUser = (u) => ({ id: u.id, username: u.username });
const publicRoom = (r) => ({ id: r.id, name: r.name, members: r.members, lastSeq: r.lastSeq, createdAt: r.createdAt });

// ---- The "chat.out" bus: an in-process queue of serialised envelopes -----
// The HTTP side (the backend) publishes JSON strings; the realtime side
// consumes them asynchronously, in order, and emits to Socket.IO rooms —
// the same work the seed does around its broker, minus the network hop.
let queue = [];
let drainScheduled = false;

function publish(type, target, payload) {
  const envelope = { id: randomUUID(), type, ...target, payload, ts: Date.now() };
  queue.push(JSON.stringify(envelope));
  if (!drainScheduled) {
    drainScheduled = true;
    setImmediate(drain);
  }
}

function drain() {
  const batch = queue;
  queue = [];
  drainScheduled = false;
  for (const raw of batch) {
    const env = JSON.parse(raw);
    const target = env.roomId ? `room:${env.roomId}` : `user:${env.userId}`;
    io.to(target).emit(env.type, env.payload);
  }
}

// ---- HTTP helpers -----------------------------------------------------------
const MAX_BODY_BYTES = 64 * 1024;
const STATUS = { bad_request: 400, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409, payload_too_large: 413 };
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class ApiError extends Error {
  constructor(code, message, status = STATUS[code]) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

function send(res, status, body) {
  const json = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
  res.end(json);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError("payload_too_large", "request body too large");
    chunks.push(chunk);
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (body && typeof body === "object" && !Array.isArray(body)) return body;
  } catch {}
  throw new ApiError("bad_request", "body must be a JSON object");
}

function authenticate(req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
  const user = m && users.get(tokens.get(m[1]));
  if (!user) throw new ApiError("unauthorized", "missing or invalid token");
  return user;
}

function issueToken(userId) {
  const token = randomBytes(32).toString("hex");
  tokens.set(token, userId);
  return token;
}

const isStr = (v, min, max) => typeof v === "string" && v.length >= min && v.length <= max;

// A room the user belongs to, or 400 / 404 / 403.
function memberRoom(roomId, user) {
  if (!UUID_RE.test(roomId)) throw new ApiError("bad_request", "roomId is not an id");
  const room = rooms.get(roomId);
  if (!room) throw new ApiError("not_found", "no such room");
  if (!room.memberSet.has(user.id)) throw new ApiError("forbidden", "not a member of this room");
  return room;
}

// ---- HTTP routes ----------------------------------------------------------
async function route(req, res) {
  const url = new URL(req.url, "http://localhost");
  const path = url.pathname;
  const method = req.method;
  const wrongMethod = () => new ApiError("bad_request", "method not allowed", 405);

  if (path === "/healthz") {
    if (method !== "GET") throw wrongMethod();
    return send(res, 200, { status: "ok" });
  }

  if (path === "/v1/auth/register" || path === "/v1/auth/login") {
    if (method !== "POST") throw wrongMethod();
    const { username, password } = await readJson(req);
    if (!isStr(username, 1, 32) || !isStr(password, 1, 1024)) throw new ApiError("bad_request", "username and password are required strings");
    if (path === "/v1/auth/login") {
      // Plain-text comparison: this is a benchmark model (roomcast uses argon2id).
      const user = users.get(usernames.get(username.toLowerCase()));
      if (!user || user.password !== password) throw new ApiError("unauthorized", "wrong username or password");
      return send(res, 200, { user: publicUser(user), token: issueToken(user.id) });
    }
    if (usernames.has(username.toLowerCase())) throw new ApiError("conflict", "username is taken");
    const user = { id: randomUUID(), username, password };
    users.set(user.id, user);
    usernames.set(username.toLowerCase(), user.id);
    return send(res, 201, { user: publicUser(user), token: issueToken(user.id) });
  }

  if (path === "/v1/rooms") {
    if (method !== "POST") throw wrongMethod();
    const user = authenticate(req);
    const { name, memberIds = [] } = await readJson(req);
    if (!isStr(name, 1, 100) || !Array.isArray(memberIds)) throw new ApiError("bad_request", "name (string) and memberIds (array) expected");
    const members = [...new Set([user.id, ...memberIds])];
    for (const id of members) if (!users.has(id)) throw new ApiError("bad_request", `unknown member: ${id}`);
    const room = {
      id: randomUUID(), name, members, memberSet: new Set(members), lastSeq: 0,
      createdAt: new Date().toISOString(), messages: [], byClientMsgId: new Map(),
    };
    rooms.set(room.id, room);
    const body = publicRoom(room);
    for (const id of members) publish("roomUpdated", { userId: id }, body);
    return send(res, 201, { room: body });
  }

  const m = /^\/v1\/rooms\/([^/]+)\/messages$/.exec(path);
  if (m) {
    const user = authenticate(req);
    const room = memberRoom(decodeURIComponent(m[1]), user);

    if (method === "GET") {
      const afterSeq = Number(url.searchParams.get("afterSeq") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 50);
      if (!Number.isInteger(afterSeq) || afterSeq < 0 || !Number.isInteger(limit) || limit < 1) throw new ApiError("bad_request", "afterSeq must be >= 0 and limit >= 1");
      // messages[i] has seq i + 1, so the page is a plain slice.
      return send(res, 200, { messages: room.messages.slice(afterSeq, afterSeq + Math.min(limit, 200)) });
    }
    if (method !== "POST") throw wrongMethod();

    const { clientMsgId, body } = await readJson(req);
    if (!isStr(clientMsgId, 1, 128) || !isStr(body, 1, 4000) || !body.trim()) throw new ApiError("bad_request", "clientMsgId and a non-blank body are required");
    const key = `${user.id}\u0000${clientMsgId}`;
    const existing = room.byClientMsgId.get(key);
    if (existing) return send(res, 200, { message: existing }); // idempotent retry: nothing stored or published

    const message = {
      id: randomUUID(), roomId: room.id, seq: ++room.lastSeq, senderId: user.id,
      body, clientMsgId, createdAt: new Date().toISOString(),
    };
    room.messages.push(message);
    room.byClientMsgId.set(key, message);
    publish("receiveMessage", { roomId: room.id }, message); // "backend -> chat.out"
    return send(res, 201, { message });
  }

  throw new ApiError("not_found", "no such route");
}

const httpServer = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    if (err instanceof ApiError) return send(res, err.status, { error: { code: err.code, message: err.message } });
    console.error(err);
    send(res, 500, { error: { code: "internal", message: "internal error" } });
  });
});

// ---- Socket.IO (the realtime tier) ---------------------------------------
// Defaults spelled out for the record; these are socket.io@4's own defaults.
const io = new Server(httpServer, {
  path: "/socket.io/",
  transports: ["polling", "websocket"],
  pingInterval: 25000,
  pingTimeout: 20000,
  perMessageDeflate: false,
});

io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (!token) return next(new Error("missing token: connect with auth: {token}"));
  const userId = tokens.get(token);
  if (!userId) return next(new Error("invalid or expired token"));
  socket.data.userId = userId;
  next();
});

const fail = (code, message) => ({ ok: false, error: { code, message } });

io.on("connection", (socket) => {
  // Handlers are registered synchronously, so an event the client emits from
  // its own "connect" handler is never missed.
  socket.on("joinRoom", (payload, ack) => {
    if (typeof payload === "function") [payload, ack] = [undefined, payload];
    const reply = typeof ack === "function" ? ack : () => {};
    const roomId = payload?.roomId;
    if (typeof roomId !== "string" || !UUID_RE.test(roomId)) return reply(fail("bad_request", "joinRoom expects {roomId}"));
    const room = rooms.get(roomId);
    if (!room) return reply(fail("not_found", "no such room"));
    if (!room.memberSet.has(socket.data.userId)) return reply(fail("forbidden", "not a member of this room"));
    socket.join(`room:${roomId}`);
    reply({ ok: true, seq: room.lastSeq });
  });

  socket.on("joinUser", (payload, ack) => {
    const reply = [payload, ack].find((f) => typeof f === "function") ?? (() => {});
    socket.join(`user:${socket.data.userId}`);
    reply({ ok: true });
  });
});

// ---- Start / stop ---------------------------------------------------------
httpServer.listen(port, host, () => {
  const shown = host.includes(":") ? `[${host}]` : host;
  console.log(`reference listening on http://${shown}:${httpServer.address().port}`);
});

let stopping = false;
function shutdown() {
  if (stopping) process.exit(0); // second signal: don't wait
  stopping = true;
  setTimeout(() => process.exit(0), 3000).unref(); // don't hang on a stuck connection
  // io.close() disconnects every socket, then closes the http server it is
  // attached to (which, on Node >= 19, also drops idle keep-alive connections).
  io.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
