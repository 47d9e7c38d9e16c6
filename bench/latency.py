"""Enqueue-to-start latency: 1,000 jobs enqueued 5 ms apart onto an idle jobdeck worker.

Starts ``python -m jobdeck_worker`` (a process of its own) with this module as its tasks
module; the ``stamp`` task returns how long ago, by the wall clock of this host, its job was
enqueued (the time is taken just before ``QueueClient.enqueue``). Target: p50 <= 5 ms,
p99 <= 20 ms.

    .venv/bin/python bench/latency.py [--jobs 1000] [--gap-ms 5]
                                      [--redis-base redis://127.0.0.1:6379]

Uses a Redis database leased on that server for the run (``redis_meter.leased_db``, flushed
before and after). Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

from jobdeck.events import EventType, decode
from jobdeck.queues import WORKERS, JobSpec, QueueClient
from jobdeck.streams import EVENTS
from jobdeck_worker.context import JobContext
from jobdeck_worker.registry import TaskRegistry
from redis.asyncio import Redis
from redis_meter import leased_db

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "latency"
TARGET_P50_MS, TARGET_P99_MS = 5.0, 20.0

registry = TaskRegistry()


@registry.task("stamp")
async def stamp(job: JobContext) -> float:
    return time.time() - float(job.data["t"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def completed_latencies(redis: Redis) -> list[float]:
    events = (decode(fields[b"e"]) for _, fields in await redis.xrange(EVENTS))
    return [
        float(e.fields["result"])
        for e in events
        if e.type is EventType.COMPLETED and e.queue == QUEUE
    ]


async def main(args: argparse.Namespace) -> None:
    async with leased_db(args.redis_base) as redis_url:
        await measure(args, redis_url)


async def measure(args: argparse.Namespace, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]),
        "JOBDECK_REDIS_URL": redis_url,
        "JOBDECK_WORKER_PORT": str(free_port()),
        "JOBDECK_LOG_LEVEL": "WARNING",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobdeck_worker", "--queue", f"{QUEUE}:10", "--tasks", "latency",
        "--grace", "0", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not await redis.zcard(WORKERS):
            if time.monotonic() > deadline or worker.returncode is not None:
                raise RuntimeError("the worker did not start")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # idle: the worker is waiting, not polling
        client = QueueClient(redis, 1_000_000)
        start = time.monotonic()
        for i in range(args.jobs):
            await asyncio.sleep(max(start + i * args.gap_ms / 1000 - time.monotonic(), 0))
            await client.enqueue(JobSpec(queue=QUEUE, name="stamp", data={"t": time.time()}))
        deadline = time.monotonic() + 30
        while len(latencies := await completed_latencies(redis)) < args.jobs:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(latencies)} of {args.jobs} jobs completed")
            await asyncio.sleep(0.1)
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
            await worker.wait()
        await redis.aclose()
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(int(len(ms) * 0.99), len(ms) - 1)]
    ok = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS
    print(
        f"latency: {args.jobs} jobs {args.gap_ms:g} ms apart onto an idle jobdeck worker: "
        f"enqueue-to-start p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms "
        f"(target p50 <= {TARGET_P50_MS:g}, p99 <= {TARGET_P99_MS:g}: {'met' if ok else 'MISSED'})"
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--redis-base", default="redis://127.0.0.1:6379")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
