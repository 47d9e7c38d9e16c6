"""Analytics at scale: endpoint latency from the rollups vs a direct aggregation over jobs,
and the recorder's throughput with rollups on and off.

Seeds ``--jobs`` finished jobs spread over ``--days`` days into a scratch database
(``jobdeck_bench_issue9``): the rows generated inside Postgres (``INSERT ... SELECT FROM
generate_series``, secondary indexes built afterwards: a Python generator feeding COPY
spent more time making rows than Postgres loading them), then the rollups by the
recorder's own rebuild (``jobdeck-recorder rebuild-rollups``: ``rollup_rebuild``), day by
day, with the recorder's default retention (minute rows for the last 7 days). Then, against
``python -m jobdeck_api``, each analytics endpoint over 24 h / 7 d / 30 d, with and without
a queue filter: p95 uncached (the cache emptied before each request) and cached; in the
same run the same figures computed straight from ``jobs`` (ratio printed). Last, the
recorder bench (``bench/recorder.py``) twice on a pre-filled stream, rollups on and off.

    .venv/bin/python bench/analytics.py [--jobs 10000000] [--days 30] [--requests 20]
        [--recorder-events 100000] [--reuse] [--keep]

Full scale is 10,000,000 jobs; ``--jobs`` (or ``JOBDECK_BENCH_ANALYTICS_JOBS``) sets a
smaller one. ``--reuse`` keeps an already seeded database of the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from api_process import start_api
from jobdeck.auth import mint_token
from jobdeck.db import create_pool, migrate
from jobdeck_recorder import rollup_rebuild
from jobdeck_recorder.config import RecorderConfig
from redis.asyncio import Redis
from redis_meter import leased_db

PG_ADMIN = os.environ.get("JOBDECK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = "jobdeck_bench_issue9"
DSN = PG_ADMIN.rsplit("/", 1)[0] + "/" + DB
SECRET = "jobdeck-bench-secret-0123456789abcdef-0123"
QUEUES = [f"queue-{i}" for i in range(8)]
NAMES = ["price-file-parser", "send-email", "build-report", "resize-image", "sync-crm", "ping"]
ERRORS = [
    ("JobTimeout", "job timed out after {n}s"),
    ("ConnectionError", "connection to 10.0.{n}.7:5432 refused"),
    ("KeyError", "'customer-{n}' not found"),
    ("ValueError", "row {n}: price '{n}.99' is not a number"),
    ("HTTPError", "502 Bad Gateway for url https://api.example.com/v1/items/{n}"),
]
ENDPOINTS = ["success-trends", "performance", "failures", "resource-usage"]
TARGET_UNCACHED_MS, TARGET_CACHED_MS, TARGET_ROLLUP_COST = 200.0, 20.0, 0.15
ANALYTICS_INDEXES = {
    "jobs_finished_idx",  # the rebuild's keyset order
    "jobs_final_finished_idx",  # the direct aggregation
    "jobs_retention_idx",
    "jobs_queue_created_idx",  # known_queues' loose index scan (live counts)
    "jobs_live_queue_idx",  # active and waiting counts
    "jobs_unfinished_updated_idx",
    "jobs_retried_idx",  # the failures report's retry rules
}
ANALYZED = ("job_rollups", "job_histograms", "job_failure_rollups", "job_attempt_failures")

DIRECT_PERFORMANCE = """
SELECT queue, name, count(*) AS finished,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE attempts > 1) AS retried,
       avg(duration_ms), min(duration_ms), max(duration_ms),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99,
       avg(extract(epoch FROM started_at - created_at) * 1000) AS wait_avg,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY started_at - created_at) AS wait_p95
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at >= $1 AND finished_at < $2
  AND ($3::text[] IS NULL OR queue = ANY($3::text[]))
GROUP BY GROUPING SETS ((queue, name), (queue), ())
"""
DIRECT_TRENDS = """
SELECT date_bin($4::interval, finished_at, '1970-01-01T00:00:00Z') AS start, queue, status,
       count(*)
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at >= $1 AND finished_at < $2
  AND ($3::text[] IS NULL OR queue = ANY($3::text[]))
GROUP BY 1, 2, 3
"""
DIRECT_FAILURES = """
SELECT error_type, error_message, count(*), min(finished_at), max(finished_at),
       array_agg(DISTINCT queue), (array_agg(id))[1]
FROM jobs
WHERE status = 'failed' AND finished_at >= $1 AND finished_at < $2
  AND ($3::text[] IS NULL OR queue = ANY($3::text[]))
GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20
"""


# One statement per chunk of ids: the same distributions as a busy deployment's history
# (9 in 10 jobs complete, 7 % fail with one of ERRORS, 3 % are cancelled; one in 20 needed
# more than one attempt; log-normal waits and durations; queues skewed, a Pareto draw).
GENERATE = """
INSERT INTO jobs (id, queue, name, status, attempts, max_attempts, added_attempt, worker,
                  error_type, error_message, created_at, started_at, finished_at, duration_ms,
                  version, progress)
SELECT 'b' || g, 'queue-' || (floor(power(1 - uq, -1 / 1.2))::bigint % 8),
       ($5::text[])[1 + floor(un * cardinality($5::text[]))::int], st, att, 3, att,
       'worker-' || floor(uw * 16)::int,
       CASE WHEN st = 'failed' THEN ($6::text[])[1 + ei] END,
       CASE WHEN st = 'failed'
            THEN replace(($7::text[])[1 + ei], '{n}', (1 + floor(ux * 9999))::int::text) END,
       created, created + wait_ms * interval '1 ms',
       least(created + (wait_ms + dur) * interval '1 ms', $4::timestamptz - interval '1 ms'), dur,
       att * 16 + 3, 100
FROM (
    SELECT g, random() AS uq, random() AS un, random() AS uw, random() AS ux,
           floor(random() * cardinality($6::text[]))::int AS ei,
           CASE WHEN us < 0.9 THEN 'completed' WHEN us < 0.97 THEN 'failed'
                ELSE 'cancelled' END AS st,
           CASE WHEN random() < 0.95 THEN 1 ELSE 2 + floor(random() * 2)::int END AS att,
           $3::timestamptz + random() * ($4::timestamptz - $3::timestamptz) AS created,
           floor(exp(5 + 1.5 * z1))::bigint AS wait_ms,
           floor(exp(6.5 + 1.3 * z2))::bigint + 1 AS dur
    FROM (
        SELECT g, random() AS us,
               sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z1,
               sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z2
        FROM generate_series($1::bigint, $2::bigint) AS g
    ) AS normal
) AS draws
"""


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _recorder_bench() -> Any:
    """``bench/recorder.py`` as a module: its stream filler, measurement and admin helper."""
    spec = importlib.util.spec_from_file_location(
        "bench_recorder", Path(__file__).with_name("recorder.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECORDER_BENCH = _recorder_bench()
admin = RECORDER_BENCH.admin


async def seed(jobs: int, days: int, end: int, reuse: bool) -> float:
    """Create and fill the bench database; returns the seconds it took (0 when reused)."""
    if reuse:
        try:
            conn = await asyncpg.connect(DSN)
        except asyncpg.InvalidCatalogNameError:
            conn = None
        if conn is not None:
            have = await conn.fetchval("SELECT count(*) FROM jobs")
            await conn.close()
            if have == jobs:
                await migrate(DSN)  # the migrations added since it was seeded
                await analyze()
                return 0.0
    await admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin(f'CREATE DATABASE "{DB}"')
    await migrate(DSN)
    began = time.perf_counter()
    start_at, end_at = _ts(end - days * 86_400_000), _ts(end)
    conn = await asyncpg.connect(DSN)
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs'"
            " AND indexname <> 'jobs_pkey'"
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        # Rebuilt after the load: the indexes analytics, the rebuild and the direct SQL use
        # (the search-only ones would only make the seed longer).
        indexes = [ix for ix in indexes if ix["indexname"] in ANALYTICS_INDEXES]
        await conn.execute("SELECT setseed(0.9)")
        messages = [template for _, template in ERRORS]
        chunk = 1_000_000
        for done in range(0, jobs, chunk):
            last = min(done + chunk, jobs)
            await conn.execute(
                GENERATE, done + 1, last, start_at, end_at, NAMES,
                [error for error, _ in ERRORS], messages,
            )  # fmt: skip
            print(f"  jobs {last:,} / {jobs:,}", file=sys.stderr, flush=True)
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for ix in indexes:
            await conn.execute(ix["indexdef"])
        await conn.execute("VACUUM ANALYZE jobs")
        print(f"  jobs and indexes in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    finally:
        await conn.close()
    pool = await create_pool(DSN, min_size=2, max_size=2)
    try:
        # Two halves at once: one's Python planning overlaps the other's Postgres writes.
        all_days = rollup_rebuild.days(start_at, end_at)
        middle = all_days[len(all_days) // 2]
        await asyncio.gather(
            *(
                rollup_rebuild.rebuild(
                    pool,
                    lo,
                    hi,
                    RecorderConfig(),
                    on_day=lambda d: print(
                        f"  rollups of {d.day:%Y-%m-%d}: {d.jobs:,} jobs",
                        file=sys.stderr,
                        flush=True,
                    ),
                )
                for lo, hi in ((start_at, middle), (middle, end_at))
            )
        )
    finally:
        await pool.close()
    await analyze()
    return time.perf_counter() - began


async def analyze() -> None:
    """Statistics of the tables the rebuild filled: the planner's row estimates (and so the
    generic plans of the API's prepared statements) depend on them, and autovacuum may be
    off or not yet have run."""
    conn = await asyncpg.connect(DSN)
    try:
        for table in ANALYZED:
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def seeded_end() -> int:
    """The hour the seeded jobs end at (epoch ms): the latest finish, rounded up."""
    conn = await asyncpg.connect(DSN)
    try:
        latest = await conn.fetchval("SELECT max(finished_at) FROM jobs")
    finally:
        await conn.close()
    ms = int(latest.timestamp() * 1000)
    return -(-ms // 3_600_000) * 3_600_000


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


async def clear_cache(redis: Redis) -> None:
    keys = [k async for k in redis.scan_iter(match="jobdeck:analytics:*", count=1000)]
    if keys:
        await redis.delete(*keys)


async def wait_ready(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(400):
        try:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError("api not ready")


async def timed(coro: Any) -> float:
    began = time.perf_counter()
    await coro
    return (time.perf_counter() - began) * 1000


async def endpoints(args: argparse.Namespace, end: int, redis: Redis) -> list[str]:
    """Per range and filter: p95 uncached/cached per endpoint, and the direct aggregation."""
    port = 18_900 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'bench', ['admin'], '*')}"}
    lines = []
    worst_uncached = worst_cached = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_api(DSN, args.redis_url, port, SECRET, Path(tmp) / "api.log")
        pool = await create_pool(DSN, min_size=1, max_size=2)
        try:
            async with aiohttp.ClientSession(headers=headers) as http:
                await wait_ready(http, url)

                async def get(endpoint: str, params: dict[str, str]) -> None:
                    async with http.get(
                        f"{url}/api/v1/jobs/analytics/{endpoint}", params=params
                    ) as r:
                        body = await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"{endpoint} {params}: {r.status} {body[:300]!r}")

                end_at = datetime.fromtimestamp(end / 1000, UTC)
                for label, span, width in (
                    ("24h", timedelta(hours=24), timedelta(hours=1)),
                    ("7d", timedelta(days=7), timedelta(hours=1)),
                    ("30d", timedelta(days=30), timedelta(days=1)),
                ):
                    for queues in (None, [QUEUES[0]]):
                        params = {
                            "startDate": (end_at - span).isoformat(),
                            "endDate": end_at.isoformat(),
                        }
                        if queues:
                            params["queues"] = ",".join(queues)
                        parts = []
                        for endpoint in ENDPOINTS:
                            uncached = []
                            for _ in range(args.requests):
                                await clear_cache(redis)
                                uncached.append(await timed(get(endpoint, params)))
                            cached = [
                                await timed(get(endpoint, params)) for _ in range(args.requests)
                            ]
                            u, c = pct(uncached, 0.95), pct(cached, 0.95)
                            worst_uncached, worst_cached = (
                                max(worst_uncached, u),
                                max(worst_cached, c),
                            )
                            parts.append(f"{endpoint} {u:.0f}/{c:.1f}")
                        direct = []
                        lo, hi = end_at - span, end_at
                        for _ in range(max(1, args.requests // 10)):
                            direct.append(
                                await timed(pool.fetch(DIRECT_PERFORMANCE, lo, hi, queues))
                                + await timed(pool.fetch(DIRECT_TRENDS, lo, hi, queues, width))
                                + await timed(pool.fetch(DIRECT_FAILURES, lo, hi, queues))
                            )
                        rollup = []
                        for _ in range(max(3, args.requests // 4)):
                            await clear_cache(redis)
                            rollup.append(
                                await timed(get("performance", params))
                                + await timed(get("success-trends", params))
                                + await timed(get("failures", params))
                            )
                        d, r = pct(direct, 0.5), pct(rollup, 0.5)
                        lines.append(
                            f"  {label} {'queue-0' if queues else 'all queues'}: p95 ms uncached/"
                            f"cached: {'; '.join(parts)} | trends+performance+failures: direct "
                            f"SQL over jobs {d:.0f} ms vs rollups {r:.0f} ms (x{d / r:.1f})"
                        )
        finally:
            await pool.close()
            proc.terminate()
            proc.wait(10)
    ok = worst_uncached <= TARGET_UNCACHED_MS and worst_cached <= TARGET_CACHED_MS
    lines.append(
        f"  worst p95: uncached {worst_uncached:.0f} ms (target <= {TARGET_UNCACHED_MS:.0f}), "
        f"cached {worst_cached:.1f} ms (target <= {TARGET_CACHED_MS:.0f}): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return lines


async def recorder_cost(args: argparse.Namespace) -> str:
    """bench/recorder.py's measurement, alternating rollups on and off."""
    rates: dict[str, list[float]] = {"1": [], "0": []}
    redis = Redis.from_url(args.redis_url)
    try:
        for rollups in ("1", "0", "1", "0"):
            db = f"jobdeck_bench_issue9_rec_{rollups}"
            dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
            await admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await admin(f'CREATE DATABASE "{db}"')
            try:
                await migrate(dsn)
                await redis.flushdb()
                os.environ["JOBDECK_RECORDER_ROLLUPS"] = rollups
                bench_args = argparse.Namespace(
                    events=args.recorder_events, redis_url=args.redis_url, batch_size=5_000
                )
                with tempfile.TemporaryFile() as log_file:
                    line = await RECORDER_BENCH.measure(
                        bench_args, dsn, args.redis_url, redis, log_file
                    )
                rate = float(line.split(" = ")[1].split(" events/s")[0].replace(",", ""))
                rates[rollups].append(rate)
            finally:
                os.environ.pop("JOBDECK_RECORDER_ROLLUPS", None)
                await admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await redis.flushdb()
        await redis.aclose()
    on, off = max(rates["1"]), max(rates["0"])
    cost = 1 - on / off
    return (
        f"  recorder, {args.recorder_events:,} events, best of 2: rollups on {on:,.0f} events/s,"
        f" off {off:,.0f} events/s: cost {cost:.1%} (target <= {TARGET_ROLLUP_COST:.0%}): "
        f"{'PASS' if cost <= TARGET_ROLLUP_COST else 'FAIL'}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_jobs = int(os.environ.get("JOBDECK_BENCH_ANALYTICS_JOBS", 10_000_000))
    parser.add_argument("--jobs", type=int, default=default_jobs)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=20, help="per endpoint and case")
    parser.add_argument("--recorder-events", type=int, default=100_000, help="0: skip")
    parser.add_argument("--redis-base", default="redis://127.0.0.1:6379")
    parser.add_argument("--reuse", action="store_true", help="keep a seeded database")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    end = int(time.time() * 1000) // 3_600_000 * 3_600_000
    async with leased_db(args.redis_base) as redis_url:
        args.redis_url = redis_url
        redis = Redis.from_url(redis_url)
        try:
            seconds = await seed(args.jobs, args.days, end, args.reuse)
            if not seconds:  # a reused database: the windows end where its jobs end
                end = await seeded_end()
            print(
                f"analytics: {args.jobs:,} jobs over {args.days} days"
                + (f", seeded with rollups in {seconds:.0f} s" if seconds else " (reused)")
            )
            for line in await endpoints(args, end, redis):
                print(line)
            if args.recorder_events > 0:
                print(await recorder_cost(args))
        finally:
            await redis.aclose()
            if not args.keep:
                await admin(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
