"""Rollup retention: minute rows for a week, hour rows for 90 days, day rows for two years
(``RecorderConfig.rollup_*_days``), deleted in small batches every prune interval.

Every recorder replica prunes; deleting rows that are already gone is a no-op, so no lease
is needed. Raw ``jobs`` retention is not this module's business.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.rollup_writer import QUERIES

log = logging.getLogger(__name__)

BATCH = 5_000


def cutoffs(config: RecorderConfig, now: datetime) -> dict[str, datetime]:
    """The oldest bucket each level keeps."""
    return {
        "minute": now - timedelta(days=config.rollup_minute_days),
        "hour": now - timedelta(days=config.rollup_hour_days),
        "day": now - timedelta(days=config.rollup_day_days),
    }


async def _drain(pool: asyncpg.Pool, query: str, *args: object) -> int:
    deleted = 0
    while True:
        status = await pool.execute(query, *args, BATCH)
        n = int(status.rsplit(" ", 1)[-1])
        deleted += n
        if n < BATCH:
            return deleted


async def prune(pool: asyncpg.Pool, config: RecorderConfig, now: datetime | None = None) -> int:
    """Delete what is past retention; the number of rows deleted."""
    limits = cutoffs(config, now or datetime.now(UTC))
    deleted = 0
    for level, cutoff in limits.items():
        deleted += await _drain(pool, QUERIES["prune_rollups"], level, cutoff)
        deleted += await _drain(pool, QUERIES["prune_histograms"], level, cutoff)
        deleted += await _drain(pool, QUERIES["prune_failure_rollups"], level, cutoff)
    deleted += await _drain(pool, QUERIES["prune_attempt_failures"], limits["hour"])
    return deleted


async def run(pool: asyncpg.Pool, config: RecorderConfig) -> None:
    """Prune every ``rollup_prune_interval_ms`` until cancelled; errors wait for the next."""
    while True:
        try:
            deleted = await prune(pool, config)
            if deleted:
                log.info("rollups pruned", extra={"deleted": deleted})
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            log.warning("rollup pruning failed", extra={"error": repr(exc)})
        await asyncio.sleep(config.rollup_prune_interval_ms / 1000)
