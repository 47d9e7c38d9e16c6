"""Gateway stats benchmark: what one stats tick costs Postgres on a large jobs table.

The measuring replica queries Postgres every 5 s. This times, on an existing database,
the tick's queries as they were (a count of every job by queue and status: a whole-table
scan) against the ones the gateway runs now (``jobdeck_gateway/sql/queries.sql``: live
jobs, the recent window, one index probe per queue). Read-only: every query runs in a
read-only transaction, nothing is created or changed, so it can point at a database
someone else is using (by default the 1,000,000-job ``jobdeck_bench_search`` that
``bench/search.py`` seeds). The indexes of ``migrations/0005_gateway.sql`` are used when
the database has them (run ``jobdeck migrate`` on it first to measure with them).

Prints one summary line: the median time of each query, and per tick, before and after.

    .venv/bin/python bench/gateway_stats.py [--dsn postgresql://...] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import asyncpg
from jobdeck.sql import SHARED
from jobdeck_gateway.queries import QUERIES
from jobdeck_gateway.stats import DEFAULT_WINDOW_S, THROUGHPUT_WINDOW_S

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/jobdeck_bench_search"

# The queries of a tick before this change (same alert_inputs text, then without indexes).
BEFORE: list[tuple[str, str, tuple[Any, ...]]] = [
    (
        "status_counts",
        "SELECT queue, status, count(*)::bigint AS n FROM jobs GROUP BY queue, status",
        (),
    ),
    (
        "recent_finished",
        "SELECT queue, count(*)::bigint AS finished,"
        " count(*) FILTER (WHERE status = 'failed')::bigint AS failed FROM jobs"
        " WHERE finished_at > now() - make_interval(secs => $1::float8) GROUP BY queue",
        (THROUGHPUT_WINDOW_S,),
    ),
    ("alert_inputs", QUERIES["alert_inputs"], ()),
]
AFTER: list[tuple[str, str, tuple[Any, ...]]] = [
    ("known_queues", SHARED["known_queues"], ()),
    ("active_counts", SHARED["active_counts"], ()),
    ("recent_finished", QUERIES["recent_finished"], (DEFAULT_WINDOW_S, THROUGHPUT_WINDOW_S)),
    ("alert_inputs", QUERIES["alert_inputs"], ()),
]


async def timed(
    conn: asyncpg.Connection,
    queries: list[tuple[str, str, tuple[Any, ...]]],
    jit: bool,
    rounds: int,
) -> dict[str, float]:
    """Median ms per query over ``rounds`` (after one warm-up), in read-only transactions."""
    found: dict[str, float] = {}
    for name, sql, args in queries:
        times = []
        for _ in range(rounds + 1):
            async with conn.transaction(readonly=True):
                if not jit:
                    await conn.execute("SET LOCAL jit = off")  # as the gateway does
                start = time.perf_counter()
                await conn.fetch(sql, *args)
                times.append((time.perf_counter() - start) * 1000)
        found[name] = statistics.median(times[1:])
    return found


async def main(dsn: str, rounds: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE relname = 'jobs'")
        configs = await conn.fetchval("SELECT count(*) FROM job_queue_configs")
        indexed = await conn.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'jobs'"
            " AND indexname IN ('jobs_live_queue_idx', 'jobs_final_finished_idx')"
        )
        before = await timed(conn, BEFORE, jit=True, rounds=rounds)
        after = await timed(conn, AFTER, jit=False, rounds=rounds)
    finally:
        await conn.close()

    def fmt(d: dict[str, float]) -> str:
        return " ".join(f"{k}={v:.1f}ms" for k, v in d.items())

    print(
        f"gateway stats tick on ~{rows:,} jobs ({configs} queue configs, "
        f"{indexed}/2 gateway indexes): before {sum(before.values()):.1f} ms "
        f"[{fmt(before)}] | after {sum(after.values()):.1f} ms [{fmt(after)}]"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--rounds", type=int, default=7)
    ns = parser.parse_args()
    asyncio.run(main(ns.dsn, ns.rounds))
