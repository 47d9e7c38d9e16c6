"""Writes a batch's rollup deltas (``rollup.plan_rollups``) in the batch's transaction.

``write_rollups`` is the store's batch hook: it runs after the job rows are written and
before the batch commits, so the rollups and the rows they summarise commit together or
not at all, and a redelivered batch finds the rows already folded (no delta).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import asyncpg
from jobdeck.sql import load_queries

from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup import LEVELS, HistogramDelta, RollupDelta, RollupPlan, plan_rollups
from jobdeck_recorder.store import json_param

QUERIES = load_queries("jobdeck_recorder", "sql/rollups.sql")
_WIDTH = dict(LEVELS)


async def write_rollups(
    conn: asyncpg.Connection, before: Mapping[str, JobRow], after: Sequence[JobRow]
) -> None:
    """Apply the deltas between the rows as locked and as written."""
    await write_plan(conn, plan_rollups((before.get(r.id), r) for r in after))


async def write_plan(conn: asyncpg.Connection, plan: RollupPlan) -> None:
    if plan.rows:
        await conn.execute(QUERIES["upsert_rollups"], json_param([_row_doc(d) for d in plan.rows]))
        removed = [_extremes_doc(d) for d in plan.rows if d.removed_min is not None]
        if removed:
            await conn.execute(QUERIES["recompute_extremes"], json_param(removed))
    if plan.histograms:
        await conn.execute(
            QUERIES["upsert_histograms"], json_param([_histogram_doc(h) for h in plan.histograms])
        )
    if plan.failures:
        await conn.execute(
            QUERIES["upsert_failure_rollups"], json_param([asdict(f) for f in plan.failures])
        )
    if plan.attempt_failures:
        await conn.execute(
            QUERIES["insert_attempt_failures"],
            json_param([asdict(a) for a in plan.attempt_failures]),
        )


def _row_doc(d: RollupDelta) -> dict[str, Any]:
    return {
        "level": d.level,
        "bucket": d.bucket,
        "queue": d.queue,
        "name": d.name,
        "status": d.status,
        "jobs": d.jobs,
        "retried": d.retried,
        "timed": d.timed,
        "duration_sum": d.duration_sum,
        "duration_min": d.duration_min,
        "duration_max": d.duration_max,
        "waited": d.waited,
        "wait_sum": d.wait_sum,
    }


def _histogram_doc(h: HistogramDelta) -> dict[str, Any]:
    return {
        "level": h.level,
        "bucket": h.bucket,
        "queue": h.queue,
        "name": h.name,
        "duration_hist": h.duration_hist,
        "wait_hist": h.wait_hist,
    }


def _extremes_doc(d: RollupDelta) -> dict[str, Any]:
    return {
        "level": d.level,
        "bucket": d.bucket,
        "queue": d.queue,
        "name": d.name,
        "status": d.status,
        "width_ms": _WIDTH[d.level],
        "removed_min": d.removed_min,
        "removed_max": d.removed_max,
    }
