// Lean benchmark clients for bench/gateway.py: the Socket.IO v5 / Engine.IO v4 protocol
// spoken directly over `ws` (the websocket library socket.io-client itself uses), so
// that 2,000 receivers on a 2-core machine measure the gateway, not client-side JSON
// parsing. Same config and output as bench-clients.mjs.
import WebSocket from "ws";

const cfg = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const MAX_MS = 30000;
const hist = new Uint32Array(MAX_MS + 1);
const PREFIX = '42/jobs,["jobProgress",';
let received = 0;
let subscribed = 0;
let failed = 0;
const sockets = [];
const wsUrl = cfg.url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";

function done() {
  if (subscribed + failed === cfg.clients) out({ kind: "ready", subscribed, failed });
}

function open(i) {
  const queue = cfg.queues[(cfg.offset + i) % cfg.queues.length];
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  let state = 0;
  ws.on("message", (raw) => {
    const msg = raw.toString();
    if (msg.startsWith(PREFIX)) {
      received += 1;
      const at = msg.indexOf('"ts":', PREFIX.length);
      const ms = Date.now() - parseInt(msg.slice(at + 5, at + 25), 10);
      hist[ms < 0 ? 0 : ms > MAX_MS ? MAX_MS : ms] += 1;
    } else if (msg === "2") {
      ws.send("3");
    } else if (msg[0] === "0" && state === 0) {
      state = 1;
      ws.send("40/jobs," + JSON.stringify({ token: cfg.token }));
    } else if (msg.startsWith('42/jobs,["connected"')) {
      ws.send("42/jobs,1" + JSON.stringify(["subscribeQueue", { queue }]));
    } else if (msg.startsWith("43/jobs,1")) {
      if (JSON.parse(msg.slice(9))[0].ok) subscribed += 1; else failed += 1;
      done();
    } else if (msg.startsWith("44/jobs")) {
      failed += 1;
      out({ kind: "error", message: msg });
      done();
    }
  });
  ws.on("error", (err) => { failed += 1; out({ kind: "error", message: String(err) }); done(); });
  sockets.push(ws);
}

for (let i = 0; i < cfg.clients; i++) open(i);

setInterval(() => out({ kind: "progress", received }), 1000).unref();

process.stdin.on("end", () => {
  const sparse = {};
  hist.forEach((n, ms) => { if (n) sparse[ms] = n; });
  for (const s of sockets) s.terminate();
  process.stdout.write(JSON.stringify({ kind: "summary", received, hist: sparse }) + "\n",
    () => process.exit(0));
});
process.stdin.resume();
