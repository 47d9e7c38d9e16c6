"""Queues and job names skewed in time on the bench database: the cost guard's verdict
against the page.

In one transaction, rolled back at the end (the bench database is left as it was, its
dead rows vacuumed): ``--jobs`` completed jobs of a queue ``fresh`` (job name
``fresh-task``) created in the week after bench/search.py's history, as many of a queue
``retired`` (``retired-task``) in the first week of it, their spans (``job_spans``) as the
recorder would keep them, ANALYZE (inside the transaction, which sees them), then for a
few searches on them the cost guard's steps (``EXPLAIN``, statistics, the span) timed,
its verdict, and the time the page really takes (cut at 20 s; ``--matrix``: each of them
by every sort field in both orders, cut at 2 s). A few seconds of CPU at 10 M rows; run it
under the bench lock:

    flock /work/wt/heavy.lock env JOBDECK_BENCH_DB=jobdeck_bench_10m \\
        .venv/bin/python bench/search_skew.py --jobs 40000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from jobdeck.filters import SortField
from jobdeck_api.limits import CostLimits
from jobdeck_api.search import plan_search
from jobdeck_api.search_estimates import Estimates
from jobdeck_api.search_guard import assess
from jobdeck_api.search_models import SearchQuery

DB = os.environ.get("JOBDECK_BENCH_DB", "jobdeck_bench_search")
DB_URL = f"postgresql://postgres@127.0.0.1:5432/{DB}"
# $1 completed jobs of queue $2, job name $3, spread over the week from $4.
WEEK_OF_JOBS = """
INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at, duration_ms,
                  attempts)
SELECT $2 || '-' || n, $2, $3, 'completed', t, t + interval '1 second',
       t + interval '2 seconds', 1000, 1
FROM generate_series(1, $1::int) n,
LATERAL (SELECT $4::timestamptz + make_interval(secs => n * 604800.0 / $1) AS t) x
"""
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


@dataclass
class Verdict:
    refusal: str | None  # the 422's detail, None when served
    decided_ms: float
    page_ms: float | None  # None: cut at the timeout
    cost: float


async def verdict(conn: asyncpg.Connection, params: dict[str, Any], timeout_s: int) -> Verdict:
    q = SearchQuery.model_validate({"limit": 20, **params})
    plan = plan_search(q, None)
    started = time.perf_counter()
    cost = 0.0
    refusal = None
    if not plan.simple:  # as the API: the simplest shape is served without a verdict
        async with conn.transaction():  # a savepoint: a probe given up cancels only itself
            page, judged = await assess(conn, Estimates(ttl_s=0), plan, q, CostLimits())
        cost, refusal = page.cost, judged.refusal
    decided = (time.perf_counter() - started) * 1000
    await conn.execute(f"SET LOCAL statement_timeout = '{timeout_s}s'")
    started = time.perf_counter()
    ran: float | None = None
    try:
        async with conn.transaction():  # a savepoint: a cancelled page leaves the rest be
            await conn.fetch(plan.sql, *plan.args)
        ran = (time.perf_counter() - started) * 1000
    except asyncpg.QueryCanceledError:
        pass
    detail = None if refusal is None else refusal.detail
    return Verdict(detail, decided, ran, cost)


def matrix() -> dict[str, dict[str, Any]]:
    """Each added queue and job name, and each kind of filter of bench/search.py's history,
    by every sort field in both orders."""
    restrictions = {
        "queue fresh": {"queues": ["fresh"]},
        "queue retired": {"queues": ["retired"]},
        "name fresh-task": {"search": "fresh-task"},
        "name retired-task": {"search": "retired-task"},
        "everything": {},
        "failed": {"status": ["failed"]},
        "waiting": {"status": ["waiting"]},
        "small queue": {"queues": ["cleanup"]},
        "rare name": {"search": "train-model"},
        "priority 50": {"priority": 50},
        "a week": {"startDate": "2026-10-01", "endDate": "2026-10-07"},
        "started in a week": {
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "dateField": "startedAt",
        },
        "finished in a week": {
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "dateField": "finishedAt",
        },
        "slow": {"minDuration": 5000},
    }
    return {
        f"{r} by {field.value} {order}": {**params, "sortBy": field.value, "sortOrder": order}
        for r, params in restrictions.items()
        for field in SortField
        for order in ("asc", "desc")
    }


async def report(conn: asyncpg.Connection, searches: dict[str, dict[str, Any]], full: bool) -> None:
    served_ms: list[float] = []
    for name, params in searches.items():
        v = await verdict(conn, params, 20 if full else 2)
        page = "> timeout" if v.page_ms is None else f"{v.page_ms:,.0f} ms"
        if v.refusal is None:
            said = "served"
            served_ms.append(float("inf") if v.page_ms is None else v.page_ms)
        else:
            said = "422 " + (v.refusal if full else v.refusal.split(",")[0])
        print(f"{name}: decided in {v.decided_ms:.1f} ms: {said} (cost {v.cost:,.0f}; page {page})")
    if served_ms:
        print(f"served: {len(served_ms)}, slowest page {max(served_ms):,.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=40_000, help="jobs of each added queue")
    parser.add_argument(
        "--matrix", action="store_true", help="every sort field and order (pages cut at 2 s)"
    )
    args = parser.parse_args()
    conn = await asyncpg.connect(DB_URL)
    tr = conn.transaction()
    await tr.start()
    try:
        first, last = await conn.fetchrow("SELECT min(created_at), max(created_at) FROM jobs")
        await conn.execute(WEEK_OF_JOBS, args.jobs, "fresh", "fresh-task", last)
        await conn.execute(WEEK_OF_JOBS, args.jobs, "retired", "retired-task", first)
        await conn.execute("SELECT widen_job_spans($1)", ["fresh", "retired"])
        await conn.execute("ANALYZE jobs")
        await report(conn, matrix() if args.matrix else SEARCHES, full=not args.matrix)
    finally:
        await tr.rollback()
        # The rolled-back jobs are the newest and oldest of each time index: vacuum them
        # away (~16 s at 10 M rows; autovacuum may be off), or the next run's walks read
        # their heap pages too.
        await conn.execute("VACUUM jobs")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
