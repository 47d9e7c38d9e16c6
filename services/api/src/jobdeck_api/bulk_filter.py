"""Bulk retry and cancel "by filter": an error fingerprint, queues, a time range, a job name.

A fingerprint from ``GET .../analytics/failures`` is a handle: ``POST /jobs/bulk/retry``
with ``{"fingerprint": ..., "queues": [...], "startDate": ..., "dryRun": true}`` answers how
many jobs it would retry; without ``dryRun`` it retries them through the same per-job code
as the id form (same results, checks and audit), at most ``limit`` jobs a call (oldest
first: by finish time, by creation time for unfinished jobs, by failure time for a
fingerprint), and says how many are left for the next call. Retry selects failed jobs (a job's
fingerprint is that of its latest failed attempt); cancel selects waiting, delayed and
active ones (for those, a fingerprint matches a job waiting to retry after that failure);
``status`` narrows that set (e.g. cancel only the waiting jobs of a queue). The time range
applies to when the job finished, or was created if it has not finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobdeck.auth import Principal
from jobdeck.events import JobStatus
from jobdeck.sql import load_queries
from jobdeck.web import PG
from pydantic import Field, model_validator

from jobdeck_api.errors import BadParameter
from jobdeck_api.job_command_models import MAX_BULK_IDS, BulkActionResponse
from jobdeck_api.models import EndInstant, JobId, Model, QueueName, StartInstant
from jobdeck_api.routing import ApiRequest

SQL = load_queries("jobdeck_api", "sql/bulk_filter.sql")
MAX_BULK_FILTER = 10_000
COUNT_CAP = 100_000
SAMPLE = 20
RETRY_STATUSES = ["failed"]
CANCEL_STATUSES = ["waiting", "delayed", "active"]
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled"})


class BulkRequest(Model):
    """Either ``jobIds``, or a filter (at least one of fingerprint, queues, startDate)."""

    job_ids: list[JobId] | None = Field(
        default=None, min_length=1, max_length=MAX_BULK_IDS, examples=[["job1", "job2"]]
    )
    fingerprint: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{16}$",
        description="an error fingerprint from GET /api/v1/jobs/analytics/failures",
    )
    queues: list[QueueName] | None = Field(default=None, min_length=1, max_length=100)
    job_name: str | None = Field(default=None, min_length=1, max_length=200)
    start_date: StartInstant | None = None
    end_date: EndInstant | None = None
    status: list[JobStatus] | None = Field(
        default=None,
        min_length=1,
        max_length=len(JobStatus),
        description="filter form: only jobs in these states, among those the endpoint"
        " selects (retry: failed; cancel: waiting, delayed, active; delete: finished ones);"
        " another state is a 422",
    )
    dry_run: bool = Field(default=False, description="only count what the filter selects")
    limit: int = Field(
        default=MAX_BULK_IDS,
        ge=1,
        le=MAX_BULK_FILTER,
        description="filter form: at most this many jobs per call, oldest first",
    )

    @model_validator(mode="after")
    def _one_form(self) -> BulkRequest:
        filtered = any(
            v is not None for v in (self.fingerprint, self.queues, self.start_date, self.job_name)
        )
        narrowed = self.end_date is not None or self.status is not None
        if self.job_ids is not None and (filtered or narrowed or self.dry_run):
            raise ValueError("jobIds: give either jobIds or a filter, not both")
        if self.job_ids is None and not filtered:
            raise ValueError(
                "jobIds: give jobIds, or a filter (fingerprint, queues, startDate or jobName)"
            )
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError("endDate: must be after startDate")
        return self


class BulkResponse(BulkActionResponse):
    """Per-job results; for the filter form also what the filter matched."""

    matched: int | None = Field(
        default=None, description=f"jobs the filter selects (counted up to {COUNT_CAP:,})"
    )
    remaining: int | None = Field(default=None, description="matched but not acted on by this call")
    dry_run: bool = False
    sample_ids: list[str] | None = Field(default=None, description="dry run: the first jobs")


def scoped_queues(requested: list[str] | None, principal: Principal) -> list[str] | None:
    """The requested queues cut down to the token's (None: every queue)."""
    if principal.queues is None:
        return requested
    if requested is None:
        return sorted(principal.queues)
    return sorted(set(requested) & principal.queues)


def narrowed_statuses(action_statuses: list[str], requested: list[JobStatus] | None) -> list[str]:
    """The action's statuses cut down to the requested ones; asking for others is a 422."""
    if requested is None:
        return action_statuses
    outside = sorted({s.value for s in requested} - set(action_statuses))
    if outside:
        reason = (
            f"this action selects only {', '.join(action_statuses)} jobs, not {', '.join(outside)}"
        )
        raise BadParameter(
            f"status: {reason}", [{"in": "body", "name": "status", "reason": reason}]
        )
    return [s for s in action_statuses if s in requested]


async def select(call: ApiRequest[Any, BulkRequest], statuses: list[str], limit: int) -> list[str]:
    """The oldest ``limit`` jobs of ``statuses`` (all finished, or all unfinished) the filter
    selects."""
    b = call.body
    args: list[Any] = [
        narrowed_statuses(statuses, b.status),
        scoped_queues(b.queues, call.principal),
        b.start_date,
        b.end_date,
        b.job_name,
        limit,
    ]
    if b.fingerprint is not None:
        rows = await call.app[PG].fetch(SQL["select_by_fingerprint"], *args, b.fingerprint)
    elif FINISHED_STATUSES.issuperset(statuses):
        rows = await call.app[PG].fetch(SQL["select_finished"], *args)
    elif FINISHED_STATUSES.isdisjoint(statuses):
        rows = await call.app[PG].fetch(SQL["select_unfinished"], *args)
    else:
        raise ValueError(f"statuses mix finished and unfinished ones: {statuses}")
    return [r["id"] for r in rows]


def dry_run_response(ids: list[str]) -> BulkResponse:
    matched = len(ids)
    return BulkResponse(
        results=[],
        counts={},
        total=0,
        matched=matched,
        remaining=matched,
        dry_run=True,
        sample_ids=ids[:SAMPLE],
    )


def with_match(response: BulkActionResponse, matched: list[str], acted: int) -> BulkResponse:
    return BulkResponse(
        **response.model_dump(),
        matched=len(matched),
        remaining=max(len(matched) - acted, 0),
    )


def window_text(start: datetime | None, end: datetime | None) -> str:
    return f"{start.isoformat() if start else '-'}..{end.isoformat() if end else '-'}"
