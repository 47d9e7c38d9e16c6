// One BullMQ worker process, the baseline of bench/worker.py, driven by lines on stdin:
//   run | pause | expect N | report | close
// and answering on stdout with one JSON object a line: {"ready"}, {"paused"}, {"done"} once N
// more jobs completed after `expect N`, {"report": {...}} with the enqueue-to-start latencies.
// argv: redis URL, key prefix, queue, concurrency. Jobs are dispatched by name, as the jobdeck
// tasks of bench/worker_tasks.py: noop, io (waits data.ms), stamp (enqueue-to-start from data.t).
import { Worker } from 'bullmq';
import { createInterface } from 'node:readline';

const [url, prefix, queue, concurrency] = process.argv.slice(2);
const wall = () => performance.timeOrigin + performance.now();
const latencies = [];

async function processor(job) {
  if (job.name === 'noop') return undefined;
  if (job.name === 'stamp') {
    latencies.push(wall() - job.data.t);
    return undefined;
  }
  if (job.name === 'io') return new Promise((resolve) => setTimeout(resolve, job.data.ms));
  throw new Error(`no task named ${job.name}`);
}

const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const u = new URL(url);
const worker = new Worker(queue, processor, {
  connection: {
    host: u.hostname,
    port: Number(u.port || 6379),
    db: Number(u.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  },
  prefix,
  concurrency: Number(concurrency),
  autorun: false,
});
worker.on('error', (err) => process.stderr.write(`worker error: ${err}\n`));

let completed = 0;
let target = Infinity;
function check() {
  if (completed >= target) {
    target = Infinity;
    say({ done: completed });
  }
}
worker.on('completed', () => {
  completed += 1;
  check();
});

await worker.waitUntilReady();
say({ ready: true });

for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(/\s+/);
  if (command === 'run') {
    if (worker.isPaused()) worker.resume();
    else worker.run().catch((err) => { process.stderr.write(`run failed: ${err}\n`); process.exit(1); });
  } else if (command === 'pause') {
    await worker.pause();
    say({ paused: true });
  } else if (command === 'expect') {
    target = completed + Number(arg);
    check();
  } else if (command === 'report') {
    say({ report: { completed, latencies_ms: latencies.splice(0) } });
  } else if (command === 'close') {
    break;
  }
}
await worker.close();
process.exit(0);
