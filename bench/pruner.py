"""Retention benchmark: rows deleted per second by the pruner on the search bench's big table,
and the search latency (p95) while it runs against while it does not.

Needs the database ``bench/search.py`` seeds (``JOBDECK_BENCH_DB``, 1,000,000 jobs by
default; 10,000,000 with ``--jobs 10000000`` there). Adds ``--prune`` old completed jobs
(with a log line each) on a queue of their own, ``bench-prune``, whose config keeps
completed jobs one day; every other queue keeps everything, so the search bench's data
survives. Then the 8 typical searches run as SQL (the API's own ``execute_search``) at
concurrency 4 throughout, while the pruner is alternately off and on (one window of
``--window`` seconds each, for each ``--duty`` given, ``--rounds`` times): load from other
processes on this shared machine then falls on both sides alike. A search that straddles a
switch is not counted.

    JOBDECK_BENCH_DB=jobdeck_bench_search .venv/bin/python bench/pruner.py [--duty 10,20]

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


class Windows:
    """The searches' latencies per state of the pruner ("off", or its duty)."""

    def __init__(self) -> None:
        self.state = "off"
        self.samples: dict[str, list[float]] = {}

    async def search_load(
        self, pool: asyncpg.Pool, searches: list[tuple[SearchQuery, Any]], until: asyncio.Event
    ) -> None:
        """Every typical search in turn on each of CONCURRENCY lanes until ``until``."""

        async def lane(offset: int) -> None:
            i = offset
            while not until.is_set():
                q, plan = searches[i % len(searches)]
                state, started = self.state, time.perf_counter()
                async with pool.acquire() as conn:
                    await execute_search(conn, plan, q)
                if self.state == state:
                    ms = (time.perf_counter() - started) * 1000
                    self.samples.setdefault(state, []).append(ms)
                i += 1

        await asyncio.gather(*(lane(n) for n in range(CONCURRENCY)))


async def remove_old_jobs(pg: asyncpg.Pool | asyncpg.Connection) -> None:
    """What a pruning run left of QUEUE's old jobs (the table back to its seeded size)."""
    await pg.execute("DELETE FROM jobs WHERE queue = $1", QUEUE)
    await pg.execute("DELETE FROM job_logs WHERE job_id LIKE 'prune-%'")


async def add_old_jobs(n: int) -> tuple[int, float]:
    """Add ``n`` old completed jobs (a log line each) on QUEUE, whose config keeps completed
    jobs one day; (rows in the table, seconds taken)."""
    await migrate(DB_URL)
    setup = await asyncpg.connect(DB_URL)
    try:
        await setup.execute("DELETE FROM job_queue_configs WHERE queue = $1", QUEUE)
        await remove_old_jobs(setup)
        old = await setup.fetchval("SELECT now() - interval '400 days'")
        started = time.perf_counter()
        await setup.execute(ADD, QUEUE, old, n)
        await setup.execute("SELECT widen_job_spans($1)", [QUEUE])
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
    parser.add_argument("--prune", type=int, default=300_000, help="old jobs added, then pruned")
    parser.add_argument("--duty", default="", help="retention_duty_pct values, e.g. 10,20")
    parser.add_argument("--batch", type=int, help="retention_batch (default: the recorder's)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds off, then on")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    total, added_s = await add_old_jobs(args.prune)
    duties = [int(d) for d in args.duty.split(",") if d] or [RecorderConfig().retention_duty_pct]
    batch = {"retention_batch": args.batch} if args.batch else {}
    pool = await create_pool(DB_URL, **PG_POOL_OPTIONS)
    prune_pool = await create_pool(DB_URL, min_size=1, max_size=2)
    windows = Windows()
    deleted = dict.fromkeys(duties, 0)
    pruning_s = dict.fromkeys(duties, 0.0)
    try:
        searches = plans(await deep_cursor(pool, total))
        warm = Windows()
        await warm.search_load(pool, searches, _after(3.0))
        done = asyncio.Event()
        load = asyncio.create_task(windows.search_load(pool, searches, done))
        for _ in range(args.rounds):
            for duty in duties:
                windows.state = "off"
                await asyncio.sleep(args.window)
                pruner = Pruner(prune_pool, prune_config(retention_duty_pct=duty, **batch))
                windows.state, started = f"duty {duty}", time.perf_counter()
                pass_ = asyncio.create_task(pruner.run_once())
                await asyncio.sleep(args.window)
                windows.state = "switching"  # the batch in hand finishes
                pruner.stop()
                result = await pass_
                assert result is not None
                deleted[duty] += result.jobs
                pruning_s[duty] += time.perf_counter() - started
        done.set()
        await load
        await remove_old_jobs(prune_pool)
    finally:
        await pool.close()
        await prune_pool.close()
    off = windows.samples["off"]
    parts = []
    for duty in duties:
        on = windows.samples[f"duty {duty}"]
        parts.append(
            f"duty {duty} %: {deleted[duty] / pruning_s[duty]:,.0f} jobs/s, search p95"
            f" {pct(on, 95):.1f} ms vs {pct(off, 95):.1f} off"
            f" ({(pct(on, 95) / pct(off, 95) - 1) * 100:+.0f}%), p50 {pct(on, 50):.1f}"
            f" vs {pct(off, 50):.1f} ({len(on)} searches)"
        )
    size = RecorderConfig(**batch).retention_batch
    print(
        f"pruner bench ({total:,} jobs; {args.prune:,} old ones added in {added_s:.0f}s;"
        f" batches of {size:,}; {args.rounds} rounds of {args.window:.0f} s off / on per duty;"
        f" {len(off)} searches off): " + "; ".join(parts)
    )


def _after(seconds: float) -> asyncio.Event:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, event.set)
    return event


if __name__ == "__main__":
    asyncio.run(main())
