// Runs seed-schedule-snippet.js (the seed's "Create a Schedule" code, verbatim) with Node's
// fetch, as a page served from JOBDECK_ORIGIN would: its relative URL resolves against that
// origin. Env: JOBDECK_TOKEN (the snippet's `token`). Prints {status, body} as one JSON line.
import { readFileSync } from "node:fs";

const code = readFileSync(new URL("seed-schedule-snippet.js", import.meta.url), "utf8");
const origin = process.env.JOBDECK_ORIGIN;
const pageFetch = (url, init) => fetch(new URL(url, origin), init);
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const snippet = new AsyncFunction("fetch", "token", `${code}\nreturn response;`);
const response = await snippet(pageFetch, process.env.JOBDECK_TOKEN);
const body = await response.json();
process.stdout.write(JSON.stringify({ status: response.status, body }) + "\n");
