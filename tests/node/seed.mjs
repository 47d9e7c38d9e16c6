// Runs seed-snippet.js (the seed's client code, verbatim) with the real socket.io-client.
// Env: JOBDECK_TOKEN (the `token` the snippet uses), JOBDECK_ORIGIN (replaces the seed's
// http://localhost:3000 when the ingress is elsewhere). console.log lines become JSON lines.
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const here = new URL(".", import.meta.url);
let code = readFileSync(new URL("seed-snippet.js", here), "utf8");
if (process.env.JOBDECK_ORIGIN) {
  code = code.replaceAll("http://localhost:3000", process.env.JOBDECK_ORIGIN);
}
const token = process.env.JOBDECK_TOKEN;
const console = {
  log: (...args) => process.stdout.write(JSON.stringify({ kind: "log", args }) + "\n"),
};
new Function("io", "token", "console", code)(io, token, console);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
