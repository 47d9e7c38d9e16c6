"""Rebuilds the analytics rollups of a time range from ``jobs``: ``jobdeck-recorder
rebuild-rollups``.

The recorder keeps the rollups as jobs finish; jobs that finished before the rollups
existed (or while ``JOBDECK_RECORDER_ROLLUPS=0``) are not in them. A rebuild works one UTC
day at a time, in one transaction per day: it deletes the day's rollup rows of every level,
then reads the day's finished jobs in batches (``final_jobs``: newest first, each batch a
range of an index) and writes each batch's plan with the recorder's own code
(``rollup.plan_rollups``, ``rollup_writer.write_plan``). Running it twice gives the same rows.

The day's transaction is REPEATABLE READ: a recorder batch that commits a change to the
same rollup rows meanwhile makes it fail with a serialization error, and the day is
rebuilt again from the jobs as they now are; a recorder batch that waits for the day's
row locks adds its delta to the rebuilt rows after the commit. Either way each job counts
once. Levels whose retention (``RecorderConfig.rollup_*_days``) is over for the whole day
are not rebuilt: the pruner would delete them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from jobdeck.events import JobStatus

from jobdeck_recorder import retention
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup import LEVELS, plan_rollups
from jobdeck_recorder.rollup_writer import QUERIES, write_plan

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
BATCH = 20_000
MAX_RETRIES = 5
Levels = tuple[tuple[str, int], ...]


class RebuildConflict(RuntimeError):
    """A day kept changing under the rebuild (recorder batches on the same rollup rows)."""


@dataclass(frozen=True, slots=True)
class DayRebuilt:
    day: datetime
    jobs: int
    levels: tuple[str, ...]
    retries: int


def days(start: datetime, end: datetime) -> list[datetime]:
    """The UTC days that [start, end) touches (a partial day is rebuilt whole)."""
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    found = []
    while first < end:
        found.append(first)
        first += DAY
    return found


def kept_levels(day: datetime, config: RecorderConfig, now: datetime) -> Levels:
    """The rollup levels that still keep some bucket of ``day``, finest first."""
    limits = retention.cutoffs(config, now)
    return tuple((level, width) for level, width in LEVELS if day + DAY > limits[level])


async def rebuild(
    pool: asyncpg.Pool,
    start: datetime,
    end: datetime,
    config: RecorderConfig,
    batch: int = BATCH,
    now: datetime | None = None,
    on_day: Callable[[DayRebuilt], None] | None = None,
) -> list[DayRebuilt]:
    """Rebuild the rollups of every UTC day that [start, end) touches, oldest first."""
    now = now or datetime.now(UTC)
    done = []
    for day in days(start, end):
        levels = kept_levels(day, config, now)
        jobs, retries = await _rebuild_day_retrying(pool, day, levels, batch)
        result = DayRebuilt(day, jobs, tuple(level for level, _ in levels), retries)
        done.append(result)
        if on_day is not None:
            on_day(result)
    return done


async def _rebuild_day_retrying(
    pool: asyncpg.Pool, day: datetime, levels: Levels, batch: int
) -> tuple[int, int]:
    """The jobs of the day and how many times it was started again after a race."""
    for retries in range(MAX_RETRIES):
        try:
            return await _rebuild_day(pool, day, levels, batch), retries
        except asyncpg.SerializationError:
            log.info("rollup rebuild raced the recorder", extra={"day": day.isoformat()})
    raise RebuildConflict(f"the rollups of {day:%Y-%m-%d} kept changing; try again")


async def _rebuild_day(pool: asyncpg.Pool, day: datetime, levels: Levels, batch: int) -> int:
    end = day + DAY
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        await conn.execute(QUERIES["clear_rollups"], day, end)
        if not levels:
            return 0
        records = await conn.fetch(QUERIES["final_jobs_unstamped"], day, end)
        jobs = await _write(conn, records, levels)
        before: tuple[datetime, str] = (end, "")
        while records := await conn.fetch(QUERIES["final_jobs"], day, end, *before, batch):
            jobs += await _write(conn, records, levels)
            before = (records[-1]["finished_ts"], records[-1]["id"])
    return jobs


async def _write(conn: asyncpg.Connection, records: list[asyncpg.Record], levels: Levels) -> int:
    if records:
        rows = [rollup_row(r) for r in records]
        await write_plan(conn, plan_rollups(((None, r) for r in rows), levels))
    return len(records)


def rollup_row(r: asyncpg.Record) -> JobRow:
    """A finished job as far as the rollups read it (``final_jobs``' columns)."""
    return JobRow(
        id=r["id"],
        queue=r["queue"],
        name=r["name"],
        status=JobStatus(r["status"]),
        created_at=r["created_at"],
        attempts=r["attempts"],
        error_type=r["error_type"],
        error_message=r["error_message"],
        run_at=r["run_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        duration_ms=r["duration_ms"],
    )
