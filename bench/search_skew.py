"""Queues and job names skewed in time on the bench database: the cost guard's verdict
against the page.

In one transaction, rolled back at the end (the bench database is left as it was, but for
the dead rows vacuum removes): ``--jobs`` completed jobs of a queue ``fresh`` (job name
``fresh-task``) created in the week after bench/search.py's history, as many of a queue
``retired`` (``retired-task``) in the first week of it, their spans (``job_spans``) as the
recorder would keep them, ANALYZE (inside the transaction, which sees them), then for a
few searches on them the cost guard's steps (``EXPLAIN``, statistics, the span) timed,
its verdict, and the time the page really takes (cut at 20 s). A few seconds of CPU at
10 M rows; run it under the bench lock:

    flock /work/wt/heavy.lock env JOBDECK_BENCH_DB=jobdeck_bench_10m \\
        .venv/bin/python bench/search_skew.py --jobs 40000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import asyncpg
from jobdeck_api.limits import CostLimits
from jobdeck_api.search import plan_search
from jobdeck_api.search_estimates import Estimates
from jobdeck_api.search_guard import assess
from jobdeck_api.search_models import SearchQuery

DB = os.environ.get("JOBDECK_BENCH_DB", "jobdeck_bench_search")
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB}"
FRESH = """
INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at, duration_ms,
                  attempts)
SELECT 'skew-' || n, 'fresh', 'fresh-task', 'completed', t, t + interval '1 second',
       t + interval '2 seconds', 1000, 1
FROM generate_series(1, $1::int) n,
LATERAL (SELECT (SELECT max(created_at) FROM jobs) + make_interval(secs => n * 604800.0 / $1)
         AS t) x
"""
RETIRED = """
INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at, duration_ms,
                  attempts)
SELECT 'retired-' || n, 'retired', 'retired-task', 'completed', t, t + interval '1 second',
       t + interval '2 seconds', 1000, 1
FROM generate_series(1, $1::int) n,
LATERAL (SELECT (SELECT min(created_at) FROM jobs) + make_interval(secs => n * 604800.0 / $1)
         AS t) x
"""
WALKED = [
    f"SELECT id FROM jobs WHERE {column} IS NOT NULL ORDER BY {column} {order}, id {order} LIMIT 20"
    for column in ("created_at", "started_at", "finished_at")
    for order in ("DESC", "ASC")
]
SEARCHES: dict[str, dict[str, Any]] = {
    "fresh by finishedAt asc": {"queues": ["fresh"], "sortBy": "finishedAt", "sortOrder": "asc"},
    "fresh by startedAt asc": {"queues": ["fresh"], "sortBy": "startedAt", "sortOrder": "asc"},
    "fresh by finishedAt desc": {"queues": ["fresh"], "sortBy": "finishedAt"},
    "fresh+cleanup completed by createdAt asc": {
        "queues": ["fresh", "cleanup"],
        "status": ["completed"],
        "sortOrder": "asc",
    },
    "name fresh-task by finishedAt asc": {
        "search": "fresh-task",
        "sortBy": "finishedAt",
        "sortOrder": "asc",
    },
    "name fresh by startedAt asc": {"search": "fresh", "sortBy": "startedAt", "sortOrder": "asc"},
    "name fresh-task by finishedAt desc": {"search": "fresh-task", "sortBy": "finishedAt"},
    "retired by finishedAt desc": {"queues": ["retired"], "sortBy": "finishedAt"},
    "retired by startedAt desc": {"queues": ["retired"], "sortBy": "startedAt"},
    "retired by createdAt desc": {"queues": ["retired", "cleanup"], "status": ["completed"]},
    "name retired-task by startedAt desc": {"search": "retired-task", "sortBy": "startedAt"},
    "name retired-task by createdAt desc": {"search": "retired-task"},
    "retired by finishedAt asc": {
        "queues": ["retired"],
        "sortBy": "finishedAt",
        "sortOrder": "asc",
    },
}


async def verdict(conn: asyncpg.Connection, params: dict[str, Any]) -> str:
    q = SearchQuery.model_validate({"limit": 20, **params})
    plan = plan_search(q, None)
    started = time.perf_counter()
    page, judged = await assess(conn, Estimates(ttl_s=0), plan, q, CostLimits())
    refusal = judged.refusal
    decided = (time.perf_counter() - started) * 1000
    await conn.execute("SET LOCAL statement_timeout = '20s'")
    started = time.perf_counter()
    try:
        await conn.fetch(plan.sql, *plan.args)
        ran = f"{(time.perf_counter() - started) * 1000:,.0f} ms"
    except asyncpg.QueryCanceledError:
        ran = "> 20 s"
    said = "422 " + refusal.detail if refusal is not None else "served"
    return f"decided in {decided:.1f} ms: {said}\n  (planner cost {page.cost:,.0f}; page {ran})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=40_000, help="jobs of each added queue")
    args = parser.parse_args()
    conn = await asyncpg.connect(DB_URL)
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute(FRESH, args.jobs)
        await conn.execute(RETIRED, args.jobs)
        await conn.execute("SELECT widen_job_spans($1)", ["fresh", "retired"])
        await conn.execute("ANALYZE jobs")
        for name, params in SEARCHES.items():
            print(f"{name}: {await verdict(conn, params)}")
    finally:
        await tr.rollback()
        # The rolled-back jobs are the newest and oldest of each time index: walk both ends
        # once so that their entries are marked dead, or the next search to walk one reads
        # them all.
        for walk in WALKED:
            await conn.execute(walk)
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
