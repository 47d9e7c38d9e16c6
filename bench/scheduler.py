"""Scheduler fire lag and idle CPU with many schedules.

Three phases against ``python -m jobdeck_scheduler`` (``--replicas`` processes), each on a
fresh set of ``--schedules`` enabled schedules (10,000 by default):

1. burst: ``--burst`` (1,000) of them due on the same second, the rest far away; fire lag
   (enqueue time - slot, as the scheduler records it per run) p50 / p99 of the burst;
2. spread: all of them on 6-field expressions spread over the seconds of a minute
   (``S * * * * *``), for ``--spread-minutes`` (2); fire lag p50 / p99 of every run;
3. idle: all of them due next year; scheduler CPU (user + system, from /proc) over
   ``--idle-seconds`` (30), as a share of one core.

Uses a scratch Postgres database (created and dropped) and a Redis database leased like
the tests' (flushed before and after).

    .venv/bin/python bench/scheduler.py [--schedules 10000] [--burst 1000] [--replicas 1]

Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import IO

import asyncpg
from jobdeck.db import migrate
from redis.asyncio import Redis

PG_ADMIN = os.environ.get("JOBDECK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("JOBDECK_BENCH_REDIS", "redis://127.0.0.1:6379")
TARGETS = {"burst_p99_ms": 500, "spread_p99_ms": 100, "idle_cpu_pct": 2.0}
YEARLY = "0 0 1 1 *"


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Fleet:
    """The scheduler processes under test."""

    def __init__(self, dsn: str, redis_url: str, replicas: int, log: IO[bytes]) -> None:
        self.dsn, self.redis_url, self.replicas, self.log = dsn, redis_url, replicas, log
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        for i in range(self.replicas):
            env = {
                **os.environ,
                "JOBDECK_DATABASE_URL": self.dsn,
                "JOBDECK_REDIS_URL": self.redis_url,
                "JOBDECK_SCHEDULER_PORT": str(free_port()),
                "JOBDECK_INSTANCE": f"bench-{i}",
                "JOBDECK_LOG_LEVEL": "WARNING",
            }
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "jobdeck_scheduler", env=env, stdout=self.log, stderr=self.log
            )
            self.procs.append(proc)

    def cpu_seconds(self) -> float:
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for p in self.procs:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    async def stop(self) -> None:
        for p in self.procs:
            if p.returncode is None:
                p.terminate()
        for p in self.procs:
            await p.wait()


async def reset(pg: asyncpg.Pool, redis: Redis) -> str:
    await pg.execute("TRUNCATE job_schedule_runs, job_schedules, job_templates CASCADE")
    await redis.flushdb()
    tid: str = await pg.fetchval(
        "INSERT INTO job_templates (name, queue, task) VALUES ('bench', 'bench', 'noop')"
        " RETURNING id"
    )
    return tid


async def add(pg: asyncpg.Pool, tid: str, rows: list[tuple[str, str, datetime]]) -> None:
    """Schedules (name, cron, next run) with overlap allow: their jobs never run here."""
    await pg.copy_records_to_table(
        "job_schedules",
        records=[(name, tid, cron, at, "allow") for name, cron, at in rows],
        columns=["name", "template_id", "cron_expression", "next_run_at", "overlap_policy"],
    )


def next_second(after: datetime, seconds: int) -> datetime:
    return (after + timedelta(seconds=seconds)).replace(microsecond=0)


async def lags(pg: asyncpg.Pool, since: datetime) -> list[float]:
    rows = await pg.fetch(
        "SELECT lag_ms FROM job_schedule_runs WHERE outcome = 'enqueued' AND scheduled_at >= $1",
        since,
    )
    return [float(r["lag_ms"]) for r in rows]


async def wait_runs(pg: asyncpg.Pool, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = int(await pg.fetchval("SELECT count(*) FROM job_schedule_runs"))
        if count >= n:
            break
        await asyncio.sleep(0.2)
    return count


async def burst(args: argparse.Namespace, pg: asyncpg.Pool, redis: Redis, fleet: Fleet) -> str:
    tid = await reset(pg, redis)
    far = datetime(datetime.now(UTC).year + 1, 1, 1, tzinfo=UTC)
    slot = next_second(datetime.now(UTC), 8)
    rows = [(f"burst-{i}", YEARLY, slot) for i in range(args.burst)]
    rows += [(f"idle-{i}", YEARLY, far) for i in range(args.schedules - args.burst)]
    await add(pg, tid, rows)
    fired = await wait_runs(pg, args.burst, 60)
    values = await lags(pg, slot)
    return (
        f"burst {fired}/{args.burst} fired: lag p50 {quantile(values, 0.5):.0f} ms, "
        f"p99 {quantile(values, 0.99):.0f} ms, max {max(values, default=0):.0f} ms"
    )


async def spread(args: argparse.Namespace, pg: asyncpg.Pool, redis: Redis) -> str:
    tid = await reset(pg, redis)
    start = next_second(datetime.now(UTC), 5)
    rows = []
    for i in range(args.schedules):
        second = i % 60
        first = start.replace(second=second)
        if first < start:
            first += timedelta(minutes=1)
        rows.append((f"spread-{i}", f"{second} * * * * *", first))
    await add(pg, tid, rows)
    await asyncio.sleep(args.spread_minutes * 60 + 2)
    values = await lags(pg, start)
    return (
        f"spread {len(values)} runs over {args.spread_minutes} min: lag p50 "
        f"{quantile(values, 0.5):.0f} ms, p99 {quantile(values, 0.99):.0f} ms"
    )


async def idle(args: argparse.Namespace, pg: asyncpg.Pool, redis: Redis, fleet: Fleet) -> str:
    tid = await reset(pg, redis)
    far = datetime(datetime.now(UTC).year + 1, 1, 1, tzinfo=UTC)
    await add(pg, tid, [(f"idle-{i}", YEARLY, far) for i in range(args.schedules)])
    await asyncio.sleep(3)  # let the wake-up from the inserts pass
    before, t0 = fleet.cpu_seconds(), time.monotonic()
    await asyncio.sleep(args.idle_seconds)
    share = 100 * (fleet.cpu_seconds() - before) / (time.monotonic() - t0) / fleet.replicas
    return f"idle CPU {share:.2f}% of a core per replica"


async def lease_redis() -> tuple[Redis, int]:
    admin_redis = Redis.from_url(f"{REDIS_BASE}/0")
    try:
        while True:
            for db in range(15, 0, -1):
                if await admin_redis.set(f"jobdeck:test-db-lease:{db}", "bench", nx=True, ex=3600):
                    return admin_redis, db
            await asyncio.sleep(0.5)
    except BaseException:
        await admin_redis.aclose()
        raise


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=1_000)
    parser.add_argument("--spread-minutes", type=float, default=2)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    db = f"jobdeck_bench_scheduler_{os.getpid()}"
    dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    await admin(f'CREATE DATABASE "{db}"')
    lease, number = await lease_redis()
    redis_url = f"{REDIS_BASE}/{number}"
    redis = Redis.from_url(redis_url)
    pg = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    log_path = os.path.join(tempfile.gettempdir(), f"bench-scheduler-{os.getpid()}.log")
    log = open_log(log_path)
    try:
        await run_phases(args, dsn, pg, redis, Fleet(dsn, redis_url, args.replicas, log), log_path)
    finally:
        log.close()
        await pg.close()
        await redis.flushdb()
        await redis.aclose()
        await lease.delete(f"jobdeck:test-db-lease:{number}")
        await lease.aclose()
        await admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def open_log(path: str) -> IO[bytes]:
    """Opened outside the event loop; main closes it."""
    return open(path, "ab")


async def run_phases(
    args: argparse.Namespace, dsn: str, pg: asyncpg.Pool, redis: Redis, fleet: Fleet, log: str
) -> None:
    try:
        await migrate(dsn)
        await redis.flushdb()
        await fleet.start()
        await asyncio.sleep(3)
        parts = [
            await burst(args, pg, redis, fleet),
            await spread(args, pg, redis),
            await idle(args, pg, redis, fleet),
        ]
        print(
            f"scheduler x{args.replicas}, {args.schedules} schedules: "
            + "; ".join(parts)
            + f" (targets: burst p99 <= {TARGETS['burst_p99_ms']} ms, spread p99 <= "
            f"{TARGETS['spread_p99_ms']} ms, idle <= {TARGETS['idle_cpu_pct']}%; log {log})"
        )
    finally:
        await fleet.stop()


if __name__ == "__main__":
    asyncio.run(main())
