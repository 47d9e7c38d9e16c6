// Benchmark clients for bench/gateway.py: N socket.io-client connections in one process.
// Usage: node bench-clients.mjs '<json>' with {url, token, queues: [...], clients, offset}.
// Client i subscribes to queues[(offset + i) % queues.length]. Prints {"kind":"ready"} when
// all are subscribed, then on stdin end prints one summary line:
// {"kind":"summary", received, hist} where hist[ms] counts publish-to-receive latencies.
import { io } from "socket.io-client";

const cfg = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const MAX_MS = 30000;
const hist = new Uint32Array(MAX_MS + 1);
let received = 0;
let subscribed = 0;
let failed = 0;
const sockets = [];

function onEvent(data) {
  received += 1;
  const ms = Date.now() - data.ts;
  hist[ms < 0 ? 0 : ms > MAX_MS ? MAX_MS : ms] += 1;
}

for (let i = 0; i < cfg.clients; i++) {
  const queue = cfg.queues[(cfg.offset + i) % cfg.queues.length];
  const socket = io(cfg.url + "/jobs", {
    auth: { token: cfg.token },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  socket.on("jobProgress", onEvent);
  socket.on("connect_error", (err) => { failed += 1; out({ kind: "error", message: err.message }); });
  socket.on("connected", () => {
    socket.emit("subscribeQueue", { queue }, (ack) => {
      if (ack && ack.ok) subscribed += 1; else failed += 1;
      if (subscribed + failed === cfg.clients) out({ kind: "ready", subscribed, failed });
    });
  });
  sockets.push(socket);
}

setInterval(() => out({ kind: "progress", received }), 1000).unref();

process.stdin.on("end", () => {
  const sparse = {};
  hist.forEach((n, ms) => { if (n) sparse[ms] = n; });
  for (const s of sockets) s.close();
  process.stdout.write(JSON.stringify({ kind: "summary", received, hist: sparse }) + "\n",
    () => process.exit(0));
});
process.stdin.resume();
