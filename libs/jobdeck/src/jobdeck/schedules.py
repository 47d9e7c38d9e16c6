"""The job a schedule queues, and its id: shared by the scheduler and the API's run-now.

A slot's job id is derived from (schedule, slot), so every replica and every retry of
the same slot names the same job; a run-now job gets a fresh id of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobdeck.queues import JobSpec


class Overlap(StrEnum):
    """What a due slot does while earlier runs are unfinished (see README "Schedules")."""

    SKIP = "skip"
    ALLOW = "allow"
    QUEUE_ONE = "queue_one"


class CatchUp(StrEnum):
    """What slots that came due while the scheduler was down or stalled do."""

    SKIP = "skip"
    ONCE = "once"
    ALL = "all"


class RunOutcome(StrEnum):
    """What became of one slot (or a range of missed slots), as the run history says."""

    ENQUEUED = "enqueued"
    SKIPPED_OVERLAP = "skipped_overlap"
    MISSED = "missed"
    FAILED_TO_ENQUEUE = "failed_to_enqueue"


class Trigger(StrEnum):
    CRON = "cron"
    CATCH_UP = "catch_up"
    MANUAL = "manual"


# The claim key of a slot's job outlives the job's own keys in Redis (arq drops them when
# the job ends), so a slot decided again after a crash never queues a second job.
CLAIM_PREFIX = "jobdeck:scheduler:fired:"
CLAIM_TTL_MS = 8 * 86_400_000


def slot_job_id(schedule_id: str, slot: datetime) -> str:
    """The job id of a schedule's slot (``slot`` in UTC)."""
    return f"sched-{schedule_id}-{slot.strftime('%Y%m%dT%H%M%S')}Z"


def manual_job_id(schedule_id: str) -> str:
    return f"sched-{schedule_id}-manual-{uuid.uuid4().hex[:16]}"


def claim_key(job_id: str) -> str:
    return CLAIM_PREFIX + job_id


def run_data(template_data: Any, schedule_data: Any) -> Any:
    """A schedule's ``data`` object is merged key by key over its template's (per-run
    overrides); any other JSON value replaces it; None keeps the template's."""
    if schedule_data is None:
        return template_data
    if isinstance(template_data, dict) and isinstance(schedule_data, dict):
        return {**template_data, **schedule_data}
    return schedule_data


def scheduled_job(row: Mapping[str, Any], job_id: str, run_at_ms: int | None = None) -> JobSpec:
    """The job of one run from a schedule row joined with its template.

    ``row`` holds the schedule's ``id``, ``priority``, ``data`` and the template's
    ``template_id``, ``queue``, ``task``, ``template_data``, ``template_priority``,
    ``max_attempts``, ``backoff_ms``, ``timeout_s``.
    """
    priority = row["priority"] if row["priority"] is not None else row["template_priority"]
    return JobSpec(
        queue=row["queue"],
        name=row["task"],
        data=run_data(row["template_data"], row["data"]),
        priority=int(priority or 0),
        max_attempts=int(row["max_attempts"]),
        backoff_ms=int(row["backoff_ms"]),
        timeout_s=float(row["timeout_s"]),
        run_at_ms=run_at_ms,
        job_id=job_id,
        template_id=row["template_id"],
        schedule_id=row["id"],
    )
