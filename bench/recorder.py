"""Recorder throughput: events per second written to Postgres from a pre-filled stream.

Pre-fills ``jobdeck:events`` with 200,000 realistic events (added, started, progress,
log, completed, failed, retrying for ~40k jobs, interleaved as concurrent workers would
emit them), starts ``python -m jobdeck_recorder`` and measures from its first read until
the group's lag and pending count are both 0. Uses a scratch Postgres database (created
and dropped) and a Redis database leased for the run (``redis_meter.leased_db``, flushed
before and after).

    .venv/bin/python bench/recorder.py [--events 200000] [--redis-base redis://127.0.0.1:6379]

Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import tempfile
import time
import uuid
from typing import IO, Any

import asyncpg
from jobdeck.db import migrate
from jobdeck.events import Event, EventType, encode
from jobdeck.queues import JobSpec
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis
from redis_meter import leased_db

TARGET = 20_000
PG_ADMIN = os.environ.get("JOBDECK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def job_events(rng: random.Random, n: int, t: int) -> list[Event]:
    """One job's life: most complete, some fail, some retry once first."""
    spec = JobSpec(
        queue=f"queue-{n % 4}",
        name=rng.choice(["price-file-parser", "send-email", "build-report", "resize-image"]),
        data={"n": n, "path": f"/data/prices-{n}.csv", "tags": ["bench", "x" * 16]},
        priority=rng.randint(0, 10),
    )
    common: dict[str, Any] = {"queue": spec.queue, "job_id": spec.job_id, "name": spec.name}
    events = [spec.added_event(t)]
    roll = rng.random()
    attempts = 2 if roll > 0.95 else 1
    for attempt in range(1, attempts + 1):
        start = t + attempt * 1_000
        events.append(
            Event(
                EventType.STARTED,
                attempt=attempt,
                ts=start,
                fields={"started_at": start, "worker": f"worker-{n % 8}", "max_attempts": 3},
                **common,
            )
        )
        for seq in range(1, rng.choice((1, 1, 2)) + 1):
            events.append(
                Event(
                    EventType.LOG,
                    attempt=attempt,
                    ts=start + seq,
                    fields={"seq": seq, "level": "info", "message": f"chunk {seq} parsed"},
                    **common,
                )
            )
        if rng.random() < 0.5:
            events.append(
                Event(
                    EventType.PROGRESS,
                    attempt=attempt,
                    ts=start + 5,
                    fields={"progress": 50, "message": "half way"},
                    **common,
                )
            )
        end = start + rng.randint(5, 500)
        timing = {"started_at": start, "finished_at": end, "duration_ms": end - start}
        if attempt < attempts:
            events.append(
                Event(
                    EventType.RETRYING,
                    attempt=attempt,
                    ts=end,
                    fields={
                        **timing,
                        "error_type": "TimeoutError",
                        "error_message": "slow",
                        "traceback": "Traceback ...",
                        "retry_at": end + 1_000,
                    },
                    **common,
                )
            )
        elif roll < 0.10:
            events.append(
                Event(
                    EventType.FAILED,
                    attempt=attempt,
                    ts=end,
                    fields={
                        **timing,
                        "error_type": "ValueError",
                        "error_message": "row 12: bad price",
                        "traceback": "Traceback ...",
                    },
                    **common,
                )
            )
        else:
            events.append(
                Event(
                    EventType.COMPLETED,
                    attempt=attempt,
                    ts=end,
                    fields={**timing, "result": {"rows": rng.randint(1, 10_000)}},
                    **common,
                )
            )
    return events


def realistic_stream(total: int, seed: int = 1) -> tuple[list[bytes], int, int]:
    """Interleave jobs as ~200 concurrent workers would; return (entries, jobs, log lines)."""
    rng = random.Random(seed)
    t0 = int(time.time() * 1000)
    entries: list[bytes] = []
    in_flight: list[list[Event]] = []
    seen: set[str | None] = set()
    created = logs = 0
    while len(entries) < total:
        while len(in_flight) < 200:
            in_flight.append(job_events(rng, created, t0 + created))
            created += 1
        i = rng.randrange(len(in_flight))
        event = in_flight[i].pop(0)
        logs += event.type is EventType.LOG
        seen.add(event.job_id)
        entries.append(encode(event))
        if not in_flight[i]:
            in_flight[i] = in_flight[-1]
            in_flight.pop()
    return entries, len(seen), logs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def group_state(redis: Redis) -> tuple[int, int, int]:
    """(lag, pending, entries read) of the recorder group; before it exists, all is lag."""
    try:
        groups = await redis.xinfo_groups(EVENTS)
    except Exception:
        groups = []
    for g in groups:
        if g["name"] == b"recorder":
            lag = g["lag"] if g["lag"] is not None else await redis.xlen(EVENTS)
            return int(lag), int(g["pending"]), int(g["entries-read"] or 0)
    return int(await redis.xlen(EVENTS)), 0, 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--redis-base", default="redis://127.0.0.1:6379")
    parser.add_argument("--batch-size", type=int, default=5_000)
    args = parser.parse_args()

    db = f"jobdeck_bench_recorder_{uuid.uuid4().hex[:8]}"
    dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    await admin(f'CREATE DATABASE "{db}"')
    try:
        await migrate(dsn)
        async with leased_db(args.redis_base) as redis_url:
            redis = Redis.from_url(redis_url)
            try:
                with tempfile.TemporaryFile() as log_file:
                    print(await measure(args, dsn, redis_url, redis, log_file))
            finally:
                await redis.aclose()
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def measure(
    args: argparse.Namespace, dsn: str, redis_url: str, redis: Redis, log_file: IO[bytes]
) -> str:
    """Pre-fill, run the recorder until the group has caught up; the summary line."""
    entries, jobs, logs = realistic_stream(args.events)
    for i in range(0, len(entries), 5_000):
        async with redis.pipeline(transaction=False) as pipe:
            for raw in entries[i : i + 5_000]:
                pipe.xadd(EVENTS, {EVENT_FIELD: raw})
            await pipe.execute()

    env = dict(os.environ)
    env.update(
        JOBDECK_DATABASE_URL=dsn,
        JOBDECK_REDIS_URL=redis_url,
        JOBDECK_RECORDER_PORT=str(free_port()),
        JOBDECK_RECORDER_BATCH_SIZE=str(args.batch_size),
        JOBDECK_LOG_LEVEL="WARNING",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobdeck_recorder", env=env, stdout=log_file, stderr=log_file
    )
    try:
        started = finished = None
        peak = 0
        while finished is None:
            if proc.returncode is not None:
                log_file.seek(0)
                raise RuntimeError(f"recorder exited: {log_file.read()[-2000:].decode()}")
            lag, pending, read = await group_state(redis)
            now = time.perf_counter()
            peak = max(peak, lag + pending)
            if started is None and read > 0:
                started = now
            if started is not None and lag == 0 and pending == 0:
                finished = now
            await asyncio.sleep(0.02)
        assert started is not None
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    elapsed = finished - started

    pg = await asyncpg.connect(dsn)
    try:
        rows = await pg.fetchval("SELECT count(*) FROM jobs")
        lines = await pg.fetchval("SELECT count(*) FROM job_logs")
        active = await pg.fetchval("SELECT count(*) FROM jobs WHERE status = 'active'")
    finally:
        await pg.close()
    rate = len(entries) / elapsed
    ok = rows == jobs and lines == logs
    return (
        f"recorder: {len(entries):,} events ({jobs:,} jobs, {logs:,} log lines) recorded in "
        f"{elapsed:.2f} s = {rate:,.0f} events/s, peak lag {peak:,}, batch {args.batch_size}"
        f"; rows {'ok' if ok else f'MISMATCH jobs={rows} logs={lines}'}"
        f" ({active} left active where the stream ends)"
        f"; target >= {TARGET:,}: {'PASS' if rate >= TARGET and ok else 'FAIL'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
