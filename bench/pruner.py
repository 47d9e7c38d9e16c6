"""Retention benchmark: rows deleted per second by the pruner on the search bench's big table,
and the search latency (p95) before and while it runs.

Needs the database ``bench/search.py`` seeds (``JOBDECK_BENCH_DB``, 1,000,000 jobs by
default; 10,000,000 with ``--jobs 10000000`` there). Adds ``--prune`` old completed jobs
(with a log line each) on a queue of their own, ``bench-prune``, whose config keeps
completed jobs one day; every other queue keeps everything, so the search bench's data
survives. Then: the 8 typical searches as SQL (the API's own ``execute_search``) at
concurrency 4 for ``--seconds``, alone, then again while the pruner deletes the added
jobs in its production batches.

    JOBDECK_BENCH_DB=jobdeck_bench_search .venv/bin/python bench/pruner.py [--prune 500000]

``bench/search.py --prune N`` runs the same pruning beside its own HTTP measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from jobdeck.db import create_pool, migrate
from jobdeck_api.app import PG_POOL_OPTIONS
from jobdeck_api.search import plan_search
from jobdeck_api.search_count import execute_search
from jobdeck_api.search_models import SearchQuery
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.pruner import Pruner

sys.path.insert(0, str(Path(__file__).parent))
from search import DB_URL, deep_cursor, pct, queries, search_query

QUEUE = "bench-prune"
CONCURRENCY = 4
ADD = """
INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at, duration_ms,
                  attempts, max_attempts, version)
SELECT 'prune-' || n, $1, 'old-task', 'completed', $2::timestamptz - make_interval(secs => n),
       $2::timestamptz - make_interval(secs => n), $2::timestamptz - make_interval(secs => n),
       5, 1, 1, 16
FROM generate_series(1, $3::int) n
"""
ADD_LOGS = """
INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)
SELECT 'prune-' || n, 1, 1, $1::timestamptz, 'info', 'an old line'
FROM generate_series(1, $2::int) n
"""


def plans(cursor: str) -> list[tuple[SearchQuery, Any]]:
    return [(q, plan_search(q, None)) for q in map(search_query, queries(cursor).values())]


async def search_load(
    pool: asyncpg.Pool, searches: list[tuple[SearchQuery, Any]], until: asyncio.Event
) -> list[float]:
    """Every typical search in turn on each of CONCURRENCY lanes until ``until`` is set."""
    latencies: list[float] = []

    async def lane(offset: int) -> None:
        i = offset
        while not until.is_set():
            q, plan = searches[i % len(searches)]
            started = time.perf_counter()
            async with pool.acquire() as conn:
                await execute_search(conn, plan, q)
            latencies.append((time.perf_counter() - started) * 1000)
            i += 1

    await asyncio.gather(*(lane(n) for n in range(CONCURRENCY)))
    return latencies


async def add_old_jobs(n: int) -> tuple[int, float]:
    """Add ``n`` old completed jobs (a log line each) on QUEUE, whose config keeps completed
    jobs one day; (rows in the table, seconds taken)."""
    await migrate(DB_URL)
    setup = await asyncpg.connect(DB_URL)
    try:
        await setup.execute("DELETE FROM job_queue_configs WHERE queue = $1", QUEUE)
        old = await setup.fetchval("SELECT now() - interval '400 days'")
        started = time.perf_counter()
        await setup.execute(ADD, QUEUE, old, n)
        await setup.execute(ADD_LOGS, old, n)
        await setup.execute("ANALYZE jobs")
        added_s = time.perf_counter() - started
        await setup.execute(
            "INSERT INTO job_queue_configs (queue, keep_completed_days) VALUES ($1, 1)", QUEUE
        )
        total = await setup.fetchval("SELECT reltuples::bigint FROM pg_class WHERE relname='jobs'")
    finally:
        await setup.close()
    return int(total), added_s


def prune_config(**over: int) -> RecorderConfig:
    """The production batches and duty cycle (unless ``over``); every queue but QUEUE keeps
    everything (0 = forever), so only QUEUE's rows go, and a pass goes on until they are gone."""
    return replace(
        RecorderConfig(**over),
        retention_completed_days=0,
        retention_failed_days=0,
        retention_logs_days=0,
        retention_max_batches=10**9,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prune", type=int, default=500_000, help="old jobs added, then pruned")
    parser.add_argument("--seconds", type=float, default=20.0, help="baseline search window")
    parser.add_argument("--duty", type=int, help="retention_duty_pct (default: the recorder's)")
    parser.add_argument("--batch", type=int, help="retention_batch (default: the recorder's)")
    args = parser.parse_args()

    total, added_s = await add_old_jobs(args.prune)
    pool = await create_pool(DB_URL, **PG_POOL_OPTIONS)
    prune_pool = await create_pool(DB_URL, min_size=1, max_size=2)
    over = {"retention_duty_pct": args.duty, "retention_batch": args.batch}
    config = prune_config(**{k: v for k, v in over.items() if v is not None})
    try:
        searches = plans(await deep_cursor(pool, total))
        await search_load(pool, searches, _after(2.0))  # warm
        baseline = await search_load(pool, searches, _after(args.seconds))
        done = asyncio.Event()
        load = asyncio.create_task(search_load(pool, searches, done))
        result = await Pruner(prune_pool, config).run_once()
        done.set()
        during = await load
    finally:
        await pool.close()
        await prune_pool.close()
    assert result is not None
    b95, d95 = pct(baseline, 95), pct(during, 95)
    print(
        f"pruner bench ({total:,} jobs; {args.prune:,} old ones added in {added_s:.0f}s):"
        f" deleted {result.jobs:,} jobs and {result.logs:,} log lines in {result.seconds:.1f}s"
        f" = {result.jobs / result.seconds:,.0f} jobs/s in batches of {config.retention_batch:,}"
        f" at a {config.retention_duty_pct} % duty cycle ({result.batches} batches); search p95"
        f" {b95:.1f} ms before, {d95:.1f} ms while pruning ({(d95 / b95 - 1) * 100:+.0f}%),"
        f" p50 {pct(baseline, 50):.1f} -> {pct(during, 50):.1f} ms"
    )


def _after(seconds: float) -> asyncio.Event:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, event.set)
    return event


if __name__ == "__main__":
    asyncio.run(main())
