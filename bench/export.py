"""Export benchmark: CSV, NDJSON, JSON and Excel of N jobs (1,000,000 by default) through a
real exporter process, against Postgres ``COPY (SELECT ...) TO STDOUT WITH CSV`` of the same
rows (the same select list, the same order) as the floor, in one run.

Seeds a scratch database ``jobdeck_bench_issue10`` in SQL (kept between runs when it already
holds N jobs), starts ``python -m jobdeck_exporter`` afresh for each format (so each peak
RSS, VmHWM, is that format's own), hands it an export the way the API does (a row and a
stream entry) and times it to the exporter's "done" signal. Prints one line per format and
one summary line. Targets (issue 10): CSV <= 2 x COPY and <= 5 s, Excel <= 60 s, peak RSS
<= 300 MB for every format.

    .venv/bin/python bench/export.py [--jobs 1000000] [--formats csv,ndjson,json,excel]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from jobdeck.db import ensure_database, migrate
from jobdeck.exports import ExportFormat, done_key, request_export
from jobdeck_exporter.columns import layout, select_list
from jobdeck_exporter.source import PARALLEL_ROWS
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.processes import ServiceProcess, free_port

PG_BASE = os.environ.get("JOBDECK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB_URL = f"{PG_BASE}/jobdeck_bench_issue10"
REDIS_BASE = os.environ.get("JOBDECK_BENCH_REDIS", "redis://127.0.0.1:6379")
ROOT = Path(__file__).resolve().parents[1]

SEED_SQL = """
INSERT INTO jobs (id, queue, name, status, priority, data, options, result, error_type,
                  error_message, progress, attempts, max_attempts, worker, created_at,
                  started_at, finished_at, duration_ms, version, added_attempt)
SELECT 'job-' || lpad(i::text, 8, '0'),
       (ARRAY['emails', 'reports', 'price-file-parser', 'images'])[1 + i % 4],
       (ARRAY['send-email', 'build-report', 'parse-prices', 'resize'])[1 + i % 4],
       CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END,
       i % 11,
       jsonb_build_object('file', '/data/' || i || '.csv', 'rows', i % 1000),
       '{"backoff_ms": 1000, "timeout_s": 300}'::jsonb,
       CASE WHEN i % 10 = 0 THEN NULL ELSE '{"ok": true}'::jsonb END,
       CASE WHEN i % 10 = 0 THEN 'ValueError' END,
       CASE WHEN i % 10 = 0 THEN '=bad row ' || i % 17 END,
       100, 1, 3, 'worker-' || i % 8,
       timestamptz '2026-09-01' + i * interval '7 seconds',
       timestamptz '2026-09-01' + i * interval '7 seconds' + interval '1 second',
       timestamptz '2026-09-01' + i * interval '7 seconds' + interval '1 second'
         + (i % 5000) * interval '1 millisecond',
       i % 5000, 19, 1
  FROM generate_series(1, $1) AS i
"""


async def seed(n: int) -> None:
    await ensure_database(DB_URL)
    await migrate(DB_URL)
    conn = await asyncpg.connect(DB_URL)
    try:
        if await conn.fetchval("SELECT count(*) FROM jobs") == n:
            # The heap was just read; read the index the exports scan too, so the first
            # COPY below does not pay for a cold cache alone.
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT id FROM jobs ORDER BY created_at DESC, id DESC) j"
            )
            return
        started = time.perf_counter()
        await conn.execute("TRUNCATE jobs, job_logs, exports")
        await conn.execute(SEED_SQL, n)
        await conn.execute("VACUUM ANALYZE jobs")
        print(f"seeded {n:,} jobs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    finally:
        await conn.close()


async def lease_redis_db() -> tuple[Redis, int]:
    """A Redis database of our own, leased like the tests' (never flushes one in use)."""
    admin = Redis.from_url(f"{REDIS_BASE}/0")
    for db in range(15, 0, -1):
        if await admin.set(f"jobdeck:test-db-lease:{db}", f"bench-{os.getpid()}", nx=True, ex=3600):
            return admin, db
    raise RuntimeError("no free Redis database")


async def copy_floor(out: Path, parallel: bool = True) -> tuple[float, int]:
    """Postgres alone: COPY of the same select list (cells formatted by SQL), in the same
    kind of transaction with the same planner setting as the exporter's (``parallel``), to a
    file."""
    query = (
        f"SELECT {select_list(ExportFormat.CSV, layout(None, False, False))} FROM jobs"
        " ORDER BY created_at DESC, id DESC"
    )
    conn = await asyncpg.connect(DB_URL)
    try:
        started = time.perf_counter()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if parallel:
                await conn.execute(PARALLEL_ROWS)
            await conn.copy_from_query(query, output=str(out), format="csv", header=True)
        elapsed = time.perf_counter() - started
        return elapsed, (await asyncio.to_thread(out.stat)).st_size
    finally:
        await conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_done(exporter: ServiceProcess, redis: Redis, export_id: str) -> None:
    """Until the exporter says the export ended; fails at once if the exporter dies."""
    while await redis.blpop([done_key(export_id)], timeout=1) is None:  # type: ignore[misc]
        if exporter.proc is not None and exporter.proc.poll() is not None:
            raise RuntimeError(
                f"the exporter exited ({exporter.proc.returncode}): {exporter.log_tail()}"
            )


async def run_export(
    fmt: ExportFormat, redis_url: str, tmp: Path
) -> tuple[float, float, float, int, int]:
    """(seconds, seconds from claim to finish, peak RSS MB, rows, bytes) of one export by a
    fresh exporter process."""
    port = free_port()
    env = dict(
        os.environ,
        JOBDECK_DATABASE_URL=DB_URL,
        JOBDECK_REDIS_URL=redis_url,
        JOBDECK_EXPORTER_PORT=str(port),
        JOBDECK_STORAGE_URL=f"file://{tmp / 'store'}",
        JOBDECK_EXPORTER_SPOOL_DIR=str(tmp / "spool"),
        JOBDECK_LOG_LEVEL="WARNING",
        JOBDECK_ENV="development",  # a scratch stack: the development JWT secret is fine
    )
    exporter = ServiceProcess("jobdeck_exporter", env, port, tmp).start()
    redis = Redis.from_url(redis_url)
    conn = await asyncpg.connect(DB_URL)
    try:
        await exporter.wait_ready(60)  # fails with the exporter's log if it exits
        assert exporter.proc is not None
        export_id = uuid.uuid4().hex
        await conn.execute(
            "INSERT INTO exports (id, requested_by, format, filename) VALUES ($1, 'bench', $2, $3)",
            export_id,
            fmt.value,
            f"bench.{fmt.extension}",
        )
        started = time.perf_counter()
        await request_export(redis, export_id)
        await wait_done(exporter, redis, export_id)
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb(exporter.proc.pid)
        row = await conn.fetchrow(
            "SELECT status, error, row_count, size_bytes,"
            " extract(epoch FROM finished_at - started_at)::float8 AS claimed_s"
            " FROM exports WHERE id = $1",
            export_id,
        )
        if row is None or row["status"] != "done":
            raise RuntimeError(f"{fmt} export did not finish: {dict(row or {})}")
        await conn.execute("DELETE FROM exports WHERE id = $1", export_id)
        return elapsed, row["claimed_s"], rss, row["row_count"], row["size_bytes"]
    finally:
        await asyncio.to_thread(exporter.stop, 30)
        await redis.aclose()
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs", type=int, default=int(os.environ.get("BENCH_EXPORT_JOBS", 1_000_000))
    )
    parser.add_argument("--formats", default="csv,ndjson,json,excel")
    args = parser.parse_args()
    await seed(args.jobs)
    load_before = os.getloadavg()
    admin, db = await lease_redis_db()
    redis_url = f"{REDIS_BASE}/{db}"
    try:
        flush = Redis.from_url(redis_url)
        await flush.flushdb()
        await flush.aclose()
        with tempfile.TemporaryDirectory(prefix="jobdeck-bench-export-") as tmpdir:
            tmp = Path(tmpdir)
            serial_s, _ = await copy_floor(tmp / "copy.csv", parallel=False)
            copy_s, copy_bytes = await copy_floor(tmp / "copy.csv")
            print(
                f"COPY (SELECT ...) TO STDOUT WITH CSV: {copy_s:.2f} s, {copy_bytes / 1e6:.0f} MB"
                f" (with Postgres's default planner costs, no parallel workers: {serial_s:.2f} s)"
            )
            results = {}
            for name in args.formats.split(","):
                fmt = ExportFormat(name)
                seconds, claimed, rss, rows, size = await run_export(fmt, redis_url, tmp)
                results[fmt] = (seconds, rss)
                print(
                    f"{fmt.value:7s} {rows:,} rows in {seconds:.2f} s"
                    f" ({rows / seconds:,.0f} rows/s; {claimed:.2f} s from claim to done),"
                    f" {size / 1e6:.0f} MB,"
                    f" exporter peak RSS {rss:.0f} MB"
                )
    finally:
        await admin.delete(f"jobdeck:test-db-lease:{db}")
        await admin.aclose()
    load_after = os.getloadavg()
    parts = [f"jobs={args.jobs:,}", f"COPY={copy_s:.2f}s"]
    for fmt, (seconds, rss) in results.items():
        parts.append(f"{fmt.value}={seconds:.2f}s/{rss:.0f}MB")
    if ExportFormat.CSV in results:
        parts.append(f"csv/COPY={results[ExportFormat.CSV][0] / copy_s:.2f}")
    parts.append(f"load(1m)={load_before[0]:.1f}->{load_after[0]:.1f}")
    print("export bench: " + " ".join(parts))


if __name__ == "__main__":
    asyncio.run(main())
