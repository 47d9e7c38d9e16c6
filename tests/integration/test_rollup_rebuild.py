"""Rebuilding the rollups of a range from ``jobs`` (``jobdeck-recorder rebuild-rollups``).

The recorder's own writes are the reference: jobs finish (some fail first and are retried
later, moving to their new outcome), the recorder's plans are written batch by batch as
they would be live, and the rows are stored in ``jobs``. A rebuild of the range, from an
emptied or corrupted state, must give back the very rows the recorder kept; a second
rebuild must change nothing; rows outside the range are not touched.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from jobdeck.events import JobStatus
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup import plan_rollups
from jobdeck_recorder.rollup_rebuild import days, kept_levels, rebuild
from jobdeck_recorder.rollup_writer import write_plan
from jobdeck_recorder.store import QUERIES, json_param, row_doc

DAY0 = datetime(2026, 6, 1, tzinfo=UTC)
DAY_MS = 86_400_000
NOW = DAY0 + timedelta(days=4)
MS3 = int(
    (DAY0 + timedelta(days=3)).timestamp() * 1000
)  # every level of the three days is still kept

SNAPSHOTS = {
    "job_rollups": """
        SELECT level, bucket, queue, name, status, jobs, retried, timed, duration_sum,
               duration_min, duration_max, waited, wait_sum
        FROM job_rollups WHERE jobs <> 0 ORDER BY level, bucket, queue, name, status""",
    "job_histograms": """
        SELECT level, bucket, queue, name, duration_hist, wait_hist FROM job_histograms
        WHERE duration_hist <> '{}' OR wait_hist <> '{}' ORDER BY level, bucket, queue, name""",
    "job_failure_rollups": """
        SELECT level, bucket, queue, name, fingerprint, failures FROM job_failure_rollups
        WHERE failures <> 0 ORDER BY level, bucket, queue, name, fingerprint""",
    "job_attempt_failures": "SELECT * FROM job_attempt_failures ORDER BY job_id, attempt",
}


async def snapshot(pg: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    return {table: [dict(r) for r in await pg.fetch(sql)] for table, sql in SNAPSHOTS.items()}


def histories(rng: random.Random, n: int, start: datetime, spread_days: int) -> list[list[JobRow]]:
    """Each job's successive rows: a final row, or a failure then its retried outcome."""
    jobs = []
    start_ms = int(start.timestamp() * 1000)
    for i in range(n):
        finished = start_ms + rng.randrange(spread_days * DAY_MS)
        duration = rng.randint(1, 90_000)
        status = rng.choice([JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
        row = JobRow(
            id=f"job-{start:%m%d}-{i}",
            queue=rng.choice(["alpha", "beta"]),
            name=rng.choice(["resize", "parse"]),
            status=status,
            created_at=finished - duration - rng.randint(0, 5_000),
            attempts=1,
            max_attempts=3,
            started_at=finished - duration,
            finished_at=finished,
            duration_ms=duration,
            version=19,
        )
        if status is JobStatus.FAILED:
            row = replace(row, error_type="KeyError", error_message=f"'user-{i}' missing")
        history = [row]
        if status is JobStatus.FAILED and rng.random() < 0.4:  # retried, maybe a day later
            later = finished + rng.randint(1_000, DAY_MS)
            history.append(
                replace(
                    row,
                    status=rng.choice([JobStatus.COMPLETED, JobStatus.FAILED]),
                    attempts=2,
                    started_at=later - 300,
                    finished_at=later,
                    duration_ms=300,
                    version=2 * 16 + 3,
                )
            )
        jobs.append(history)
    return jobs


async def record_live(pg: asyncpg.Pool, jobs: list[list[JobRow]]) -> None:
    """The recorder's way: each change written to ``jobs``, then its plan to the rollups."""
    async with pg.acquire() as conn, conn.transaction():
        for history in jobs:
            before = None
            for row in history:
                write = "insert_jobs" if before is None else "update_jobs"
                await conn.execute(QUERIES[write], json_param([row_doc(row)]))
                await write_plan(conn, plan_rollups([(before, row)]))
                before = row


async def test_a_rebuild_gives_back_what_the_recorder_kept(pg: asyncpg.Pool) -> None:
    rng = random.Random(9)
    jobs = histories(rng, 150, DAY0, 3)
    await record_live(pg, jobs)
    kept = await snapshot(pg)
    await record_live(pg, histories(rng, 20, _day(5), 1))  # outside the rebuilt range
    outside = await pg.fetchval("SELECT count(*) FROM job_rollups WHERE bucket >= $1", _day(5))
    # Lost and corrupted rollups in the range: what a rebuild is for.
    await pg.execute("DELETE FROM job_rollups WHERE level = 'minute' AND bucket < $1", _day(1))
    await pg.execute("UPDATE job_histograms SET duration_hist = '{\"3\": 5}'")
    await pg.execute("UPDATE job_failure_rollups SET failures = failures + 2 WHERE level = 'day'")
    await pg.execute("DELETE FROM job_attempt_failures WHERE job_id LIKE 'job-0601-1%'")

    # A start within the first day rebuilds that whole day; batches of 7 jobs.
    done = await rebuild(pg, DAY0 + timedelta(hours=5), _day(3), RecorderConfig(), 7, NOW)
    assert [d.day for d in done] == [_day(0), _day(1), _day(2)]
    assert sum(d.jobs for d in done) == finished_before(jobs, _day(3))
    assert all(d.levels == ("minute", "hour", "day") for d in done)
    rebuilt = await snapshot(pg)
    for table in ("job_rollups", "job_histograms", "job_failure_rollups"):
        in_range = [r for r in rebuilt[table] if r["bucket"] < _day(3)]
        assert in_range == [r for r in kept[table] if r["bucket"] < _day(3)], table
    # Failed attempt rows: a job's final failure is in ``jobs``, so a rebuild restores it;
    # earlier failures of a retried job are only known to the recorder that saw them.
    final_failures = {
        (h[-1].id, h[-1].attempts)
        for h in jobs
        if h[-1].status is JobStatus.FAILED and (h[-1].finished_at or 0) < MS3
    }
    attempts = {(r["job_id"], r["attempt"]) for r in rebuilt["job_attempt_failures"]}
    assert final_failures and final_failures <= attempts
    assert (
        await pg.fetchval("SELECT count(*) FROM job_rollups WHERE bucket >= $1", _day(5)) == outside
    )

    await rebuild(pg, _day(0), _day(3), RecorderConfig(), 1_000, NOW)
    assert await snapshot(pg) == rebuilt


async def test_levels_past_their_retention_are_not_rebuilt(pg: asyncpg.Pool) -> None:
    jobs = histories(random.Random(3), 30, DAY0, 1)
    await record_live(pg, jobs)
    config = replace(RecorderConfig(), rollup_minute_days=7, rollup_hour_days=90)
    later = DAY0 + timedelta(days=30)
    assert kept_levels(DAY0, config, later) == (("hour", 3_600_000), ("day", 86_400_000))
    assert kept_levels(DAY0, config, DAY0 + timedelta(days=1000)) == ()
    done = await rebuild(pg, DAY0, _day(1), config, now=later)
    assert [(d.jobs, d.levels) for d in done] == [(finished_before(jobs, _day(1)), ("hour", "day"))]
    levels = await pg.fetch(
        "SELECT DISTINCT level FROM job_rollups WHERE bucket < $1 ORDER BY level", _day(1)
    )
    assert [r["level"] for r in levels] == ["day", "hour"]
    done = await rebuild(pg, DAY0, _day(1), config, now=DAY0 + timedelta(days=1000))
    assert [(d.jobs, d.levels) for d in done] == [(0, ())]
    assert await pg.fetchval("SELECT count(*) FROM job_rollups WHERE bucket < $1", _day(1)) == 0


def test_a_range_is_widened_to_whole_utc_days() -> None:
    assert days(DAY0 + timedelta(hours=23), DAY0 + timedelta(days=1, minutes=1)) == [
        _day(0),
        _day(1),
    ]
    assert days(DAY0, _day(1)) == [_day(0)]


async def test_the_command_rebuilds_and_refuses_a_backwards_range(
    pg: asyncpg.Pool, database_url: str
) -> None:
    recent = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await record_live(pg, histories(random.Random(5), 10, recent, 1))
    await pg.execute("DELETE FROM job_rollups")
    env = {**os.environ, "JOBDECK_DATABASE_URL": database_url, "JOBDECK_LOG_LEVEL": "WARNING"}
    day = f"{recent:%Y-%m-%d}"
    code, out = await _run(env, "--start", day, "--end", f"{recent + timedelta(days=1):%Y-%m-%d}")
    assert code == 0, out
    assert f"{day}: 10 jobs, levels minute,hour,day" in out
    assert await pg.fetchval("SELECT sum(jobs) FROM job_rollups WHERE level = 'day'") == 10
    code, out = await _run(env, "--start", day, "--end", day)
    assert code == 2 and "--end must be after --start" in out


async def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobdeck_recorder",
        "rebuild-rollups",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


def finished_before(jobs: list[list[JobRow]], end: datetime) -> int:
    end_ms = int(end.timestamp() * 1000)
    return sum(1 for history in jobs if (history[-1].finished_at or 0) < end_ms)


def _day(n: int) -> datetime:
    return DAY0 + timedelta(days=n)


async def test_jobs_finished_within_one_millisecond_are_each_read_once(pg: asyncpg.Pool) -> None:
    # Ids ordered against their finish times, microseconds apart: batches of 2 must still
    # page through them by the column itself, not by its millisecond rounding.
    jobs = histories(random.Random(1), 6, DAY0 + timedelta(hours=3), 1)
    await record_live(pg, [[h[0]] for h in jobs])
    await pg.execute(
        "UPDATE jobs SET finished_at = $1::timestamptz"
        " + (10 - right(id, 1)::int) * interval '1 microsecond'",
        DAY0 + timedelta(hours=5),
    )
    done = await rebuild(pg, DAY0, _day(1), RecorderConfig(), 2, NOW)
    assert [d.jobs for d in done] == [6]
    assert await pg.fetchval("SELECT sum(jobs) FROM job_rollups WHERE level = 'day'") == 6
