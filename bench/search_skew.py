"""A queue skewed in time on the bench database: the cost guard's verdict against the page.

In one transaction, rolled back at the end (the bench database is left as it was, but for
the dead rows vacuum removes): ``--jobs`` completed jobs of a queue ``fresh`` created in the
week after bench/search.py's history, ANALYZE (inside the transaction, which sees them),
then for a few searches on it the cost guard's steps (``EXPLAIN``, statistics, the queues'
span) timed, its verdict, and the time the page really takes (cut at 20 s). A few seconds
of CPU at 10 M rows; run it under the bench lock:

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
from jobdeck_api.search_estimates import planner_estimate, read_null_stats
from jobdeck_api.search_guard import judge, walked_column
from jobdeck_api.search_models import SearchQuery
from jobdeck_api.search_skew import bounded, read_span

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
WALKED = ("created_at DESC", "started_at DESC NULLS LAST", "finished_at DESC NULLS LAST")
SEARCHES: dict[str, dict[str, Any]] = {
    "fresh by finishedAt asc": {"queues": ["fresh"], "sortBy": "finishedAt", "sortOrder": "asc"},
    "fresh by startedAt asc": {"queues": ["fresh"], "sortBy": "startedAt", "sortOrder": "asc"},
    "fresh by finishedAt desc": {"queues": ["fresh"], "sortBy": "finishedAt"},
    "fresh+cleanup completed by createdAt asc": {
        "queues": ["fresh", "cleanup"],
        "status": ["completed"],
        "sortOrder": "asc",
    },
}


async def verdict(conn: asyncpg.Connection, params: dict[str, Any]) -> str:
    q = SearchQuery.model_validate({"limit": 20, **params})
    plan = plan_search(q, None)
    started = time.perf_counter()
    page = await planner_estimate(conn, plan.sql, plan.args)
    nulls = await read_null_stats(conn) if page.walks else None
    walked = walked_column(q, page)
    span = None
    if walked is not None and bounded(*walked) and plan.queues:
        span = await read_span(conn, plan.queues, walked[0])
    refusal = judge(q, page, CostLimits(), plan.offset, nulls, span).refusal
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
    parser.add_argument("--jobs", type=int, default=40_000, help="jobs of the queue fresh")
    args = parser.parse_args()
    conn = await asyncpg.connect(DB_URL)
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute(FRESH, args.jobs)
        await conn.execute("ANALYZE jobs")
        for name, params in SEARCHES.items():
            print(f"{name}: {await verdict(conn, params)}")
    finally:
        await tr.rollback()
        # The rolled-back jobs are the newest of each time index: walk those heads once so
        # that their entries are marked dead, or the next search to walk one reads them all.
        for order in WALKED:
            await conn.execute(f"SELECT id FROM jobs ORDER BY {order}, id DESC LIMIT 20")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
