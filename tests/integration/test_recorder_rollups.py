"""The rollup writer against Postgres: retention of each level."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
from jobdeck.events import JobStatus
from jobdeck_recorder import retention
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup import plan_rollups
from jobdeck_recorder.rollup_writer import write_plan

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def finished(job_id: str, at: datetime, status: JobStatus = JobStatus.FAILED) -> JobRow:
    ms = int(at.timestamp() * 1000)
    return JobRow(
        id=job_id,
        queue="q",
        name="task",
        status=status,
        created_at=ms - 1_000,
        attempts=1,
        started_at=ms - 500,
        finished_at=ms,
        duration_ms=500,
        error_type="KeyError",
        error_message="'x' missing",
        version=19,
    )


async def test_each_level_is_kept_for_its_own_retention(pg: asyncpg.Pool) -> None:
    ages = {"recent": 1, "week-old": 10, "quarter-old": 100, "ancient": 800}
    rows = [finished(name, NOW - timedelta(days=days)) for name, days in ages.items()]
    async with pg.acquire() as conn, conn.transaction():
        await write_plan(conn, plan_rollups((None, r) for r in rows))
    config = replace(RecorderConfig(), rollup_minute_days=7, rollup_hour_days=90)
    deleted = await retention.prune(pg, config, NOW)
    kept = await pg.fetch(
        "SELECT level, count(*) AS n FROM job_rollups GROUP BY level ORDER BY level"
    )
    # minute rows: only the recent job; hour rows: recent + week-old; day rows: all but ancient
    assert [(r["level"], r["n"]) for r in kept] == [("day", 3), ("hour", 2), ("minute", 1)]
    failures = await pg.fetch(
        "SELECT level, count(*) AS n FROM job_failure_rollups GROUP BY level ORDER BY level"
    )
    assert [(r["level"], r["n"]) for r in failures] == [("day", 3), ("hour", 2), ("minute", 1)]
    histograms = await pg.fetch(
        "SELECT level, count(*) AS n FROM job_histograms GROUP BY level ORDER BY level"
    )
    assert [(r["level"], r["n"]) for r in histograms] == [("day", 3), ("hour", 2), ("minute", 1)]
    assert await pg.fetchval("SELECT count(*) FROM job_attempt_failures") == 2
    assert deleted == 6 + 6 + 6 + 2
    assert await retention.prune(pg, config, NOW) == 0


async def test_histograms_add_bucket_by_bucket_and_drop_zeros(pg: asyncpg.Pool) -> None:
    cases = [
        ('{"1": 2, "5": 1}', '{"1": -2, "7": 3}', {"5": 1, "7": 3}),
        ('{"3": 4}', "{}", {"3": 4}),
        ("{}", '{"3": 1, "4": 2}', {"3": 1, "4": 2}),
        ('{"3": 1}', '{"3": -1}', {}),
    ]
    for a, b, expected in cases:
        assert (
            await pg.fetchval("SELECT jobdeck_hist_add($1::text::jsonb, $2::text::jsonb)", a, b)
            == expected
        )
