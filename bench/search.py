"""Search benchmark: 1,000,000 jobs, 8 typical queries over HTTP at concurrency 8 against
the same queries as raw SQL (the API's own SQL, on the same pool size), in one run.

Seeds a scratch database ``jobdeck_bench_search`` by COPY (kept between runs; pass
``--reseed`` to rebuild), starts ``python -m jobdeck_api`` on a free port, and prints one
summary line (per query p50/p95 for API and SQL, and the median API/SQL ratio).

Fairness: the API runs as in production, rate limits on (a budget the run cannot
exhaust, so every request still pays for the check); the SQL side runs the API's own
``execute_search`` through a pool sized like the API's. HTTP goes over one keep-alive
connection per lane with a minimal client (a browser or load tool's cost, not aiohttp's
client, which would take CPU from the server on this 2-core machine), and API and SQL
rounds alternate so that load from other processes falls on both alike.

    .venv/bin/python bench/search.py [--jobs 1000000] [--requests 200] [--reseed]
    JOBDECK_BENCH_DB=jobdeck_bench_10m .venv/bin/python bench/search.py --jobs 10000000

Then the untypical searches (``worst_cases``), over HTTP only: each is either served
within the API's cost limits or refused with a 422 up front; the line reports which,
with p50/p95.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import socket
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
from api_process import start_api
from jobdeck.auth import mint_token
from jobdeck.db import create_pool, ensure_database, migrate
from jobdeck_api.app import PG_POOL_OPTIONS
from jobdeck_api.search import encode_cursor, plan_search
from jobdeck_api.search_count import execute_search
from jobdeck_api.search_models import SearchQuery
from redis_meter import leased_db

PG_BASE = os.environ.get("JOBDECK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
# A database of the bench's own (JOBDECK_BENCH_DB), so that runs at different scales can coexist.
DB_URL = f"{PG_BASE}/{os.environ.get('JOBDECK_BENCH_DB', 'jobdeck_bench_search')}"
REDIS_BASE = os.environ.get("JOBDECK_BENCH_REDIS", "redis://127.0.0.1:6379")
SECRET = "jobdeck-bench-secret-0123456789abcdef0123"
CONCURRENCY = 8
ROUNDS = 4  # API and SQL alternate, ROUNDS times each, per query
QUEUES = {
    "price-file-parser": ["price-file-parser", "price-update"],
    "emails": ["send-email", "send-digest"],
    "reports": ["generate-report", "export-report"],
    "images": ["resize-image", "thumbnail"],
    "billing": ["charge-card", "refund"],
    "sync": ["sync-inventory", "sync-catalog"],
    "search": ["reindex", "warm-cache"],
    "webhooks": ["deliver-webhook"],
    "ml": ["score-model", "train-model"],
    "cleanup": ["purge-expired", "vacuum-files"],
}
STATUSES = [("completed", 70), ("failed", 10), ("cancelled", 5), ("waiting", 8), ("delayed", 3)]
STATUSES.append(("active", 4))
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def csv_chunks(n: int, chunk: int = 50_000) -> Any:
    """Rows in COPY text format, generated in chunks to keep memory flat."""
    rnd = random.Random(42)
    queue_names = list(QUEUES)
    weights = [30, 15, 10, 10, 8, 8, 6, 5, 4, 4]
    statuses = [s for s, _ in STATUSES]
    sweights = [w for _, w in STATUSES]
    span = 90 * 86400
    buf = io.StringIO()
    for i in range(n):
        queue = rnd.choices(queue_names, weights)[0]
        name = rnd.choice(QUEUES[queue])
        status = rnd.choices(statuses, sweights)[0]
        created = NOW - timedelta(seconds=span * (1 - i / n) + rnd.random())
        started = finished = duration = r"\N"
        attempts = 0
        if status in ("active", "completed", "failed") or (
            status == "cancelled" and rnd.random() < 0.5
        ):
            s = created + timedelta(milliseconds=rnd.randint(5, 5000))
            started, attempts = s.isoformat(), 1 if status != "failed" else 3
            if status != "active":
                d = int(rnd.lognormvariate(6.5, 1.3))
                finished, duration = (s + timedelta(milliseconds=d)).isoformat(), str(d)
        elif status == "cancelled":
            finished = (created + timedelta(seconds=3)).isoformat()
        priority = rnd.choices([0, 1, 5, 10, 50], [70, 10, 10, 7, 3])[0]
        error = "ValueError\tbad row 17" if status == "failed" else "\\N\t\\N"
        data = json.dumps({"file": f"/data/{i}.csv", "rows": i % 1000})
        buf.write(
            f"job-{i:07d}\t{queue}\t{name}\t{status}\t{priority}\t{data}\t"
            f'{{"backoff_ms": 1000, "timeout_s": 300}}\t{error}\t{attempts}\t3\t'
            f"{created.isoformat()}\t{started}\t{finished}\t{duration}\t{max(attempts, 1) * 16}\n"
        )
        if (i + 1) % chunk == 0:
            yield buf.getvalue().encode()
            buf = io.StringIO()
    if buf.tell():
        yield buf.getvalue().encode()


COLUMNS = [
    "id", "queue", "name", "status", "priority", "data", "options", "error_type",
    "error_message", "attempts", "max_attempts", "created_at", "started_at", "finished_at",
    "duration_ms", "version",
]  # fmt: skip


async def seed(n: int, reseed: bool) -> float:
    await ensure_database(DB_URL)
    await migrate(DB_URL)
    conn = await asyncpg.connect(DB_URL)
    try:
        # (bench/pruner.py's old jobs on their own queue do not count)
        have = await conn.fetchval("SELECT count(*) FROM jobs WHERE queue <> 'bench-prune'")
        if have == n and not reseed:
            return 0.0
        started = time.perf_counter()
        await conn.execute("TRUNCATE jobs")
        # Load without secondary indexes, then rebuild them: much faster than maintaining.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs'"
            " AND indexname <> 'jobs_pkey'"
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        chunks = csv_chunks(n)

        class Source:
            def __aiter__(self) -> Source:
                return self

            async def __anext__(self) -> bytes:
                try:
                    return next(chunks)
                except StopIteration:
                    raise StopAsyncIteration from None

        await conn.copy_to_table("jobs", source=Source(), columns=COLUMNS, format="text")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        await conn.execute("SELECT widen_job_spans()")  # as the recorder would have
        await conn.execute("VACUUM (ANALYZE) jobs")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def deep_cursor(pool: asyncpg.Pool, jobs: int) -> str:
    """The cursor that page 10,000 (limit 20, default sort) starts after."""
    q = SearchQuery.model_validate({})
    plan = plan_search(q, None)
    offset = min(9_999 * 20 - 1, jobs // 2)
    row = await pool.fetchrow(
        "SELECT id, created_at FROM jobs ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
        offset,
    )
    assert row is not None
    return encode_cursor(plan.sort, row)


def queries(cursor: str) -> dict[str, dict[str, Any]]:
    return {
        "recent": {"limit": 20},
        "failed": {"status": "failed", "limit": 20},
        "queue+status by finished": {
            "queues": "emails",
            "status": "completed",
            "sortBy": "finishedAt",
            "limit": 20,
        },
        "seed example": {
            "search": "price",
            "status[]": ["completed", "failed"],
            "queues[]": "price-file-parser",
            "startDate": "2024-01-01",
            "sortBy": "duration",
            "sortOrder": "desc",
            "page": 1,
            "limit": 20,
        },
        "name substring": {"search": "report", "limit": 20},
        "week, slow, by duration": {
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "minDuration": 5000,
            "sortBy": "duration",
            "limit": 20,
        },
        "high priority": {"minPriority": 10, "sortBy": "priority,createdAt", "limit": 20},
        "page 10,000 by cursor": {"cursor": cursor, "limit": 20},
    }


def worst_cases() -> dict[str, dict[str, Any]]:
    """The untypical searches, each served within its budget or refused (422) with advice."""
    return {
        "small queue by attempts": {"queues": "cleanup", "sortBy": "attempts", "limit": 20},
        "page 5,000 by duration": {"page": 5000, "sortBy": "duration", "limit": 20},
        "exactTotal on everything": {"exactTotal": "true", "limit": 20},
        "exactTotal on a small queue's failures": {
            "queues": "cleanup",
            "status": "failed",
            "exactTotal": "true",
            "limit": 20,
        },
        "failed by startedAt asc": {
            "status": "failed",
            "sortBy": "startedAt",
            "sortOrder": "asc",
            "limit": 20,
        },
        "2 queues 2 statuses by finishedAt asc": {
            "queues[]": ["ml", "cleanup"],
            "status[]": ["failed", "cancelled"],
            "sortBy": "finishedAt",
            "sortOrder": "asc",
            "limit": 20,
        },
        "waiting by startedAt desc": {"status": "waiting", "sortBy": "startedAt", "limit": 20},
        "failed by duration asc": {
            "status": "failed",
            "sortBy": "duration",
            "sortOrder": "asc",
            "limit": 20,
        },
        "rare name by duration": {"search": "train-model", "sortBy": "duration", "limit": 20},
        "small queue, a week, slow, by attempts": {
            "queues": "cleanup",
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "minDuration": 5000,
            "sortBy": "attempts",
            "limit": 20,
        },
        "a week of createdAt by startedAt desc": {
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "sortBy": "startedAt",
            "limit": 20,
        },
        "a week of createdAt by finishedAt asc": {
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "sortBy": "finishedAt",
            "sortOrder": "asc",
            "limit": 20,
        },
        "a week of startedAt by createdAt": {
            "startDate": "2026-10-01",
            "endDate": "2026-10-07",
            "dateField": "startedAt",
            "limit": 20,
        },
        "everything by status": {"sortBy": "status", "limit": 20},
        "two-letter substring": {"search": "ab", "limit": 20},
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_concurrently(n: int, once: Any) -> list[float]:
    """``n`` calls of ``once(lane)`` over CONCURRENCY lanes; latency of each in ms."""
    latencies: list[float] = []
    remaining = iter(range(n))

    async def lane(number: int) -> None:
        for _ in remaining:
            t = time.perf_counter()
            await once(number)
            latencies.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(lane(i) for i in range(CONCURRENCY)))
    return latencies


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, as a load tool holds it: a GET written as bytes,
    the answer read by its Content-Length (the API never chunks these). A few
    microseconds of client CPU a request (aiohttp's client took three times more, taken
    from the server on this 2-core machine)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}\r\n".encode()
        )
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        return int(head.split(" ", 2)[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def as_multidict(params: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for k, v in params.items():
        for item in v if isinstance(v, list) else [v]:
            out.append((k, str(item)))
    return out


def search_query(params: dict[str, Any]) -> SearchQuery:
    """The query the API parses from ``params`` (lists as ``key[]`` or repeated keys)."""
    raw: dict[str, Any] = {}
    for k, v in as_multidict(params):
        key = k.removesuffix("[]")
        if key in ("status", "queues"):
            raw.setdefault(key, []).append(v)
        else:
            raw[key] = v
    return SearchQuery.model_validate(raw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the API did not become ready at {url}")


async def leased_main() -> None:
    """The API's Redis is a database leased for the run (flushed before and after)."""
    async with leased_db(REDIS_BASE) as redis_url:
        await main(redis_url)


async def main(redis_url: str) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="per query and side")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument(
        "--worst-requests", type=int, default=40, help="per untypical query (API only)"
    )
    parser.add_argument(
        "--prune", type=int, default=0, help="old jobs added, pruned while measuring (pruner.py)"
    )
    args = parser.parse_args()

    seeded_s = await seed(args.jobs, args.reseed)
    pruning = await start_pruning(args.prune) if args.prune else None
    port = free_port()
    proc = start_api(
        DB_URL,
        redis_url,
        port,
        SECRET,
        Path("/tmp") / f"bench-search-api-{port}.log",
        # Checked on every request like any limit; only its size keeps the run below it.
        JOBDECK_API_RATE_LIMIT="100000/minute",
    )
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'bench', ['viewer'])}"}
    pool = await create_pool(DB_URL, **PG_POOL_OPTIONS)
    lanes = [HttpConnection("127.0.0.1", port, headers) for _ in range(CONCURRENCY)]
    results: dict[str, tuple[float, float, float, float]] = {}
    worst: dict[str, tuple[float, float, str]] = {}
    floor_ms: list[float] = []
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        cursor = await deep_cursor(pool, args.jobs)

        async def floor_once(lane: int) -> None:
            status, _ = await lanes[lane].get("/healthz")
            assert status == 200

        await run_concurrently(4 * CONCURRENCY, floor_once)
        floor_ms = await run_concurrently(args.requests, floor_once)
        per_round = max(1, args.requests // ROUNDS)
        for name, params in queries(cursor).items():
            target = "/api/v1/jobs/search?" + urlencode(as_multidict(params))
            q = search_query(params)
            plan = plan_search(q, None)

            async def api_once(lane: int, target: str = target) -> None:
                status, body = await lanes[lane].get(target)
                assert status == 200, body

            async def sql_once(lane: int, q: SearchQuery = q, plan: Any = plan) -> None:
                async with pool.acquire() as conn:
                    await execute_search(conn, plan, q)

            # Warm both paths at full concurrency (plans, statement caches, pool growth).
            await run_concurrently(4 * CONCURRENCY, api_once)
            await run_concurrently(4 * CONCURRENCY, sql_once)
            api_ms: list[float] = []
            sql_ms: list[float] = []
            for _ in range(ROUNDS):
                api_ms += await run_concurrently(per_round, api_once)
                sql_ms += await run_concurrently(per_round, sql_once)
            results[name] = (
                pct(api_ms, 50),
                pct(api_ms, 95),
                pct(sql_ms, 50),
                pct(sql_ms, 95),
            )
        for name, params in worst_cases().items():
            target = "/api/v1/jobs/search?" + urlencode(as_multidict(params))
            codes: dict[int, int] = {}

            async def worst_once(lane: int, target: str = target, codes: Any = codes) -> None:
                status, body = await lanes[lane].get(target)
                assert status in (200, 422), body
                codes[status] = codes.get(status, 0) + 1

            await run_concurrently(CONCURRENCY, worst_once)
            worst_ms = await run_concurrently(args.worst_requests, worst_once)
            outcome = "/".join(f"{code}x{n}" for code, n in sorted(codes.items()))
            worst[name] = (pct(worst_ms, 50), pct(worst_ms, 95), outcome)
    finally:
        pruned = await stop_pruning(*pruning) if pruning else ""
        for lane in lanes:
            await lane.close()
        await pool.close()
        proc.terminate()
        proc.wait(15)
    ratios = [a50 / s50 for a50, _, s50, _ in results.values() if s50 > 0]
    parts = [
        f"{name}: api p50 {a50:.1f}/p95 {a95:.1f} ms, sql p50 {s50:.1f}/p95 {s95:.1f} ms"
        for name, (a50, a95, s50, s95) in results.items()
    ]
    seeded = f"seeded in {seeded_s:.0f}s; " if seeded_s else ""
    print(
        f"search bench ({args.jobs:,} jobs, concurrency {CONCURRENCY}, {args.requests} req/query;"
        f" {seeded}median API/SQL p50 ratio {statistics.median(ratios):.2f}; HTTP floor"
        f" (GET /healthz) p50 {pct(floor_ms, 50):.1f} ms): " + "; ".join(parts)
    )
    print(
        "untypical searches (API, answered 200 or refused 422; p50/p95 ms): "
        + "; ".join(f"{n}: {o} p50 {a:.1f}/p95 {b:.1f}" for n, (a, b, o) in worst.items())
    )
    if pruned:
        print(pruned)


async def start_pruning(n: int) -> tuple[Any, asyncpg.Pool, asyncio.Task[Any], float]:
    """Add ``n`` old jobs on bench/pruner.py's queue and prune them in the background."""
    from pruner import Pruner, add_old_jobs, prune_config

    await add_old_jobs(n)
    prune_pool = await create_pool(DB_URL, min_size=1, max_size=2)
    pruner = Pruner(prune_pool, prune_config())
    return pruner, prune_pool, asyncio.create_task(pruner.run_once()), time.perf_counter()


async def stop_pruning(
    pruner: Any, prune_pool: asyncpg.Pool, task: asyncio.Task[Any], started: float
) -> str:
    """Stop the pruner; what it did meanwhile; the rows it left are deleted at once."""
    from pruner import remove_old_jobs

    running = not task.done()
    pruner.stop()
    result = await task
    await remove_old_jobs(prune_pool)
    await prune_pool.close()
    seconds = time.perf_counter() - started
    return (
        f"pruner beside the whole run: deleted {result.jobs:,} jobs in {result.batches} batches,"
        f" {result.jobs / seconds:,.0f} jobs/s; "
        + ("still pruning at the end" if running else f"done after {result.seconds:.0f}s")
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(leased_main())
