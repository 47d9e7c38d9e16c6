"""Gateway stats benchmark: what one stats tick costs Postgres on a large jobs table.

The measuring replica queries Postgres every 5 s. This times, on an existing database, the
tick's queries as they were (``BEFORE``: what finished in the window counted in ``jobs``
through ``jobs_final_finished_idx``, one index entry per job: 3.6 M entries for an hour at
1,000 jobs/s) against the ones the gateway runs now (``jobdeck_gateway/sql/queries.sql``:
the same counts summed from the recorder's minute and hour rollups, a few rows per minute
and queue whatever the rate). Read-only: every query runs in a read-only transaction,
nothing is created or changed, so it can point at a database someone else is using (one
with rollups, e.g. the 10 M-job ``jobdeck_bench_issue9`` that ``bench/analytics.py``
seeds, 30 days up to the seeding).

``--window-s`` sets the stats window (the gateway's ``stats_window_s``; an hour by
default); on a seeded database, a window of days holds as many jobs as an hour at a high
rate does (the seeded rate times the window, printed).

Prints one summary line: the median time of each query, and per tick, before and after.

    .venv/bin/python bench/gateway_stats.py [--dsn postgresql://...] [--rounds 7] [--window-s 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import asyncpg
from jobdeck_gateway.queries import QUERIES
from jobdeck_gateway.stats import DEFAULT_WINDOW_S

Queries = list[tuple[str, str, tuple[Any, ...]]]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/jobdeck_bench_issue9"

# The windowed queries of a tick before this change (known_queues and active_counts are
# unchanged): counted in jobs, the failure window of each alert too.
RECENT_FINISHED_BEFORE = """
SELECT queue,
       count(*) FILTER (WHERE status = 'completed')::bigint AS completed,
       count(*) FILTER (WHERE status = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE status = 'cancelled')::bigint AS cancelled,
       count(*) FILTER (
           WHERE finished_at > now() - make_interval(secs => $2::float8)
       )::bigint AS finished_recently
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled')
  AND finished_at > now() - make_interval(secs => $1::float8)
GROUP BY queue
"""
ALERT_INPUTS_BEFORE = """
SELECT c.queue, c.alert_failure_rate, c.alert_failure_window_s, c.alert_waiting_backlog,
       c.alert_oldest_waiting_s, w.finished, w.failed,
       (SELECT extract(epoch FROM now()
                                  - min(greatest(j.created_at, coalesce(j.run_at, j.created_at))))
          FROM jobs j WHERE j.queue = c.queue AND j.status = 'waiting') AS oldest_waiting_s
FROM job_queue_configs c
LEFT JOIN LATERAL (
    SELECT count(*)::bigint AS finished,
           count(*) FILTER (WHERE j.status = 'failed')::bigint AS failed
    FROM jobs j
    WHERE j.queue = c.queue
      AND j.status IN ('completed', 'failed')
      AND j.finished_at > now() - make_interval(secs => c.alert_failure_window_s::float8)
) w ON true
"""  # fmt: skip


def plans(window_s: int) -> tuple[Queries, Queries]:
    before: Queries = [
        ("recent_finished", RECENT_FINISHED_BEFORE, (window_s, 60)),
        ("alert_inputs", ALERT_INPUTS_BEFORE, ()),
    ]
    after: Queries = [
        ("finished_windows", QUERIES["finished_windows"], (window_s,)),
        ("finished_last_minutes", QUERIES["finished_last_minutes"], ()),
        ("alert_inputs", QUERIES["alert_inputs"], ()),
    ]
    return before, after


async def timed(
    conn: asyncpg.Connection,
    queries: Queries,
    settings: str,
    rounds: int,
) -> dict[str, float]:
    """Median ms per query over ``rounds`` (after one warm-up), in read-only transactions."""
    found: dict[str, float] = {}
    for name, sql, args in queries:
        times = []
        for _ in range(rounds + 1):
            async with conn.transaction(readonly=True):
                await conn.execute(settings)
                start = time.perf_counter()
                await conn.fetch(sql, *args)
                times.append((time.perf_counter() - start) * 1000)
        found[name] = statistics.median(times[1:])
    return found


async def main(dsn: str, rounds: int, window_s: int) -> None:
    before_q, after_q = plans(window_s)
    conn = await asyncpg.connect(dsn)
    try:
        in_window = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed', 'cancelled')"
            " AND finished_at > now() - make_interval(secs => $1::float8)",
            window_s,
        )
        configs = await conn.fetchval("SELECT count(*) FROM job_queue_configs")
        # As each version of the gateway ran them: jit off before, parallel workers off now.
        before = await timed(conn, before_q, "SET LOCAL jit = off", rounds)
        after = await timed(
            conn,
            after_q,
            "SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0",
            rounds,
        )
    finally:
        await conn.close()

    def fmt(d: dict[str, float]) -> str:
        return " ".join(f"{k}={v:.1f}ms" for k, v in d.items())

    print(
        f"gateway stats tick, window {window_s:,} s holding {in_window:,} finished jobs "
        f"({configs} queue configs): windowed queries before {sum(before.values()):.1f} ms "
        f"[{fmt(before)}] | after {sum(after.values()):.1f} ms [{fmt(after)}]"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--window-s", type=int, default=DEFAULT_WINDOW_S)
    ns = parser.parse_args()
    asyncio.run(main(ns.dsn, ns.rounds, ns.window_s))
