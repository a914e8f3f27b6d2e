// A check of the conformance server with the official socket.io-client
// (v4), over websocket, polling, and polling upgraded to websocket:
// handshake auth, `/custom`, binary echo, acks, several 300 ms heartbeats,
// and "Invalid namespace". Prints one line per case.
//
//   cargo build --release -p roomcast-sio --examples
//   target/release/examples/sio-conformance --port 3000 &
//   d=$(mktemp -d) && cp crates/sio/scripts/official-client.mjs "$d" && cd "$d"
//   npm init -y && npm install socket.io-client@4
//   node official-client.mjs http://127.0.0.1:3000
//
// (ES-module imports resolve from the script's own folder, hence the copy.)
import { io } from "socket.io-client";
const url = process.argv[2];
const results = [];
function run(name, transports, upgrade = true) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { results.push(`${name}: TIMEOUT`); s.close(); c.close(); resolve(); }, 5000);
    const s = io(url, { transports, upgrade, auth: { token: "t1" }, reconnection: false, forceNew: true });
    const c = io(url + "/custom", { transports, upgrade, auth: { k: 2 }, reconnection: false, forceNew: true });
    let steps = 0;
    const done = () => { if (++steps === 5) { clearTimeout(timer); results.push(`${name}: ok (transport ${s.io.engine.transport.name})`); s.close(); c.close(); resolve(); } };
    s.on("auth", (a) => { if (a.token === "t1") done(); else results.push(`${name}: bad auth ${JSON.stringify(a)}`); });
    c.on("auth", (a) => { if (a.k === 2) done(); });
    s.on("connect", async () => {
      s.emit("message", 1, "two", { three: [3] }, Buffer.from([1, 2, 3]));
      const r = await s.emitWithAck("message-with-ack", "x", Buffer.from([9]));
      if (r === "x") done(); else results.push(`${name}: bad ack ${JSON.stringify(r)}`);
      // A few ping cycles (300 ms) must pass without a disconnect.
      setTimeout(done, 1200);
    });
    s.on("message-back", (...args) => {
      const ok = args.length === 4 && args[0] === 1 && args[1] === "two" && Buffer.from(args[3]).equals(Buffer.from([1, 2, 3]));
      if (ok) done(); else results.push(`${name}: bad echo ${JSON.stringify(args)}`);
    });
    s.on("disconnect", (r) => { if (r !== "io client disconnect") results.push(`${name}: disconnected ${r}`); });
    s.on("connect_error", (e) => results.push(`${name}: connect_error ${e.message}`));
  });
}
const bad = io(url + "/nope", { reconnection: false, forceNew: true });
const invalid = new Promise((resolve) => bad.on("connect_error", (e) => { results.push(`invalid namespace: ${e.message}`); bad.close(); resolve(); }));
await run("websocket", ["websocket"]);
await run("polling", ["polling"], false);
await run("polling+upgrade", ["polling", "websocket"], true);
await invalid;
console.log(results.join("\n"));
process.exit(0);
