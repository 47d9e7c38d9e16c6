// Adds jobs to a BullMQ queue for bench/worker.py, then prints {"added": N} and exits. A trickle
// first connects, prints {"ready": true} and waits for a line on stdin, so that starting node is
// not part of the measured window.
// argv: redis URL, key prefix, queue, mode (bulk | trickle), count, task name, [gap ms], [data JSON]
//   bulk:    addBulk in chunks of 1,000 (a pre-filled queue)
//   trickle: one add every `gap` ms, each stamped with the wall clock just before (data.t)
import { Queue } from 'bullmq';
import process from 'node:process';

const [url, prefix, name, mode, count, task, gap, data] = process.argv.slice(2);
const u = new URL(url);
const queue = new Queue(name, {
  connection: { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) },
  prefix,
});
const n = Number(count);
const payload = data ? JSON.parse(data) : {};
const wall = () => performance.timeOrigin + performance.now();
await queue.waitUntilReady();
if (mode === 'bulk') {
  for (let start = 0; start < n; start += 1000) {
    const chunk = [];
    for (let i = start; i < Math.min(start + 1000, n); i += 1) chunk.push({ name: task, data: payload });
    await queue.addBulk(chunk);
  }
} else if (mode === 'trickle') {
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const gapMs = Number(gap);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1) {
    const wait = t0 + i * gapMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await queue.add(task, { ...payload, t: wall() });
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
await queue.close();
process.stdout.write(`${JSON.stringify({ added: n })}\n`);
