// A real socket.io-client v4 on /jobs, driven by the Python tests.
// Usage: node client.mjs '<json>' with {url, auth, headers?, emits: [[name, data|null], ...]}.
// Prints one JSON object per line: {"kind": "event"|"ack"|"connect_error"|"ready"|"disconnect", ...}.
// Exits when its stdin closes.
import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(config.url + "/jobs", {
  auth: config.auth ?? {},
  extraHeaders: config.headers ?? {},
  transports: config.transports ?? ["polling", "websocket"],
  reconnection: false,
});

socket.onAny((event, data) => out({ kind: "event", event, data }));
socket.on("connect_error", (err) => {
  out({ kind: "connect_error", message: err.message, data: err.data ?? null });
  process.exit(0);
});
socket.on("disconnect", (reason) => out({ kind: "disconnect", reason }));
socket.on("connected", async () => {
  for (const [name, data] of config.emits ?? []) {
    const ack = data === null
      ? await socket.timeout(10000).emitWithAck(name)
      : await socket.timeout(10000).emitWithAck(name, data);
    out({ kind: "ack", message: name, sent: data, data: ack });
  }
  out({ kind: "ready" });
});

process.stdin.on("end", () => { socket.close(); process.exit(0); });
process.stdin.resume();
