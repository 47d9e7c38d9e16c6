// Runs seed-export-snippet.js (the seed's "Export Jobs to Excel" code, verbatim) as a page
// at JOBDECK_ORIGIN would: relative URLs resolve against that origin. Then downloads the
// returned url and saves it to JOBDECK_OUT. Prints one JSON line with what happened.
import { readFileSync, writeFileSync } from "node:fs";

const origin = process.env.JOBDECK_ORIGIN;
const token = process.env.JOBDECK_TOKEN;
const pageFetch = (input, init) => fetch(new URL(input, origin), init);
const code = readFileSync(new URL("seed-export-snippet.js", import.meta.url), "utf8");
const AsyncFunction = (async () => {}).constructor;
const url = await new AsyncFunction("fetch", "token", code + "\nreturn url;")(pageFetch, token);
const download = await pageFetch(url);
const body = Buffer.from(await download.arrayBuffer());
writeFileSync(process.env.JOBDECK_OUT, body);
process.stdout.write(
  JSON.stringify({
    url,
    status: download.status,
    bytes: body.length,
    contentType: download.headers.get("content-type"),
    disposition: download.headers.get("content-disposition"),
  }) + "\n",
);
