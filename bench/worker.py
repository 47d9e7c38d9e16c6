"""Worker throughput: no-op jobs per second, one jobdeck worker process vs one bare arq worker.

Both run as their own process with the same ``max_jobs`` against the same Redis, in the same
run, one after the other (rounds alternate, the best round of each counts). The bare arq
worker is tuned (``poll_delay=0.01``) so the baseline is not arq's 0.5 s polling. For each
round N jobs are written to a staging key while the worker idles, then renamed onto the
queue in one step (jobdeck's worker also gets its wake-up message); the clock runs from the
rename until the queue is empty (arq removes a job from the queue when it finishes).

    .venv/bin/python bench/worker.py [--jobs 20000] [--concurrency 10] [--rounds 2]
                                     [--redis-url redis://127.0.0.1:6379/12]

Uses a Redis database of its own (flushed before and after). Prints one summary line.
Also the module the bare arq worker process runs (``--arq-worker QUEUE``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from asyncio.subprocess import Process
from pathlib import Path

from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from jobdeck.queues import JobSpec, QueueClient, queue_key, wake_channel
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.90
READY_KEY = "bench:arq-ready:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the bare arq worker process ------------------------------------------------------------


async def _noop(ctx: dict[str, object]) -> None:
    return None


def run_arq_worker(redis_url: str, queue: str, concurrency: int) -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    async def ready(ctx: dict[str, object]) -> None:
        redis = ctx["redis"]
        await redis.set(READY_KEY + queue, 1)  # type: ignore[attr-defined]

    worker = Worker(
        functions=[func(_noop, name="noop")],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(redis_url),
        max_jobs=concurrency,
        poll_delay=0.01,
        on_startup=ready,
        handle_signals=True,
    )
    worker.run()


# -- the benchmark ----------------------------------------------------------------------------


async def stage_arq(redis: Redis, staging: str, n: int) -> None:
    now = int(time.time() * 1000)
    for start in range(0, n, 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(start, min(start + 2000, n)):
                job_id = uuid.uuid4().hex
                pipe.psetex(
                    job_key_prefix + job_id, 86_400_000, serialize_job("noop", (), {}, None, now)
                )
                pipe.zadd(staging, {job_id: now})
            await pipe.execute()


async def stage_jobdeck(redis: Redis, staging_queue: str, n: int) -> None:
    client = QueueClient(redis, 1_000_000)
    for start in range(0, n, 2000):
        specs = [
            JobSpec(queue=staging_queue, name="noop") for _ in range(start, min(start + 2000, n))
        ]
        assert all(await client.enqueue_many(specs))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drain(
    redis: Redis, queue_key_: str, staging: str, wake: str | None, pid: int
) -> tuple[float, float]:
    """Move the staged jobs onto the queue at once; (seconds until empty, worker CPU seconds)."""
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rename(staging, queue_key_)
        if wake is not None:
            pipe.publish(wake, "1")
        await pipe.execute()
    while await redis.zcard(queue_key_):  # noqa: ASYNC110 - the condition lives in Redis
        await asyncio.sleep(0.005)
    return time.perf_counter() - started, cpu_seconds(pid) - cpu


async def wait_until(check, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {within}s")


async def spawn(cmd: list[str], env: dict[str, str] | None = None) -> Process:
    return await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop(proc: Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


Round = tuple[float, float]  # jobs per second, worker CPU microseconds per job


def round_result(n: int, seconds: float, cpu: float) -> Round:
    return n / seconds, cpu / n * 1e6


async def arq_round(redis: Redis, url: str, n: int, concurrency: int) -> Round:
    queue = f"bench:arq:{uuid.uuid4().hex[:8]}"
    staging = queue + ":staging"
    await stage_arq(redis, staging, n)
    cmd = [
        sys.executable,
        __file__,
        "--arq-worker",
        queue,
        "--redis-url",
        url,
        "--concurrency",
        str(concurrency),
    ]
    proc = await spawn(cmd)
    try:
        await wait_until(lambda: redis.exists(READY_KEY + queue), 30, "arq worker")
        return round_result(n, *await drain(redis, queue, staging, None, proc.pid))
    finally:
        await stop(proc)


async def jobdeck_round(redis: Redis, url: str, n: int, concurrency: int) -> Round:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    staging_queue = queue + "-staging"
    await stage_jobdeck(redis, staging_queue, n)
    env = {
        **os.environ,
        "JOBDECK_REDIS_URL": url,
        "JOBDECK_WORKER_PORT": str(free_port()),
        "JOBDECK_LOG_LEVEL": "WARNING",
    }
    cmd = [
        sys.executable,
        "-m",
        "jobdeck_worker",
        "--queue",
        f"{queue}:{concurrency}",
        "--tasks",
        "jobdeck_worker.demo",
        "--grace",
        "0",
    ]
    proc = await spawn(cmd, env)
    try:
        await wait_until(lambda: _has_worker(redis), 30, "jobdeck worker")
        await asyncio.sleep(0.2)  # let the queue loop reach its idle wait
        timing = await drain(
            redis, queue_key(queue), queue_key(staging_queue), wake_channel(queue), proc.pid
        )
        return round_result(n, *timing)
    finally:
        await stop(proc)


async def _has_worker(redis: Redis) -> bool:
    return bool(await redis.zcard("jobdeck:workers"))


async def main(args: argparse.Namespace) -> None:
    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    arq: list[Round] = []
    jobdeck: list[Round] = []
    try:
        for _ in range(args.rounds):  # interleaved, so both see the same machine load
            arq.append(await arq_round(redis, args.redis_url, args.jobs, args.concurrency))
            await redis.flushdb()
            jobdeck.append(await jobdeck_round(redis, args.redis_url, args.jobs, args.concurrency))
            await redis.flushdb()
    finally:
        await redis.flushdb()
        await redis.aclose()
    best_arq, best_jd = max(r[0] for r in arq), max(r[0] for r in jobdeck)
    cpu_arq, cpu_jd = min(r[1] for r in arq), min(r[1] for r in jobdeck)
    print(
        f"worker: {args.jobs} no-op jobs, max_jobs={args.concurrency}, best of {args.rounds}: "
        f"jobdeck {best_jd:,.0f} jobs/s, bare arq (poll_delay=0.01) {best_arq:,.0f} jobs/s, "
        f"ratio {best_jd / best_arq:.2f} (target >= {TARGET:.2f}); "
        f"worker CPU per job jobdeck {cpu_jd:.0f} us, arq {cpu_arq:.0f} us "
        f"[jobs/s per round: jobdeck {', '.join(f'{r[0]:,.0f}' for r in jobdeck)}; "
        f"arq {', '.join(f'{r[0]:,.0f}' for r in arq)}]"
    )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--arq-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.arq_worker:
        run_arq_worker(arguments.redis_url, arguments.arq_worker, arguments.concurrency)
    else:
        asyncio.run(main(arguments))
