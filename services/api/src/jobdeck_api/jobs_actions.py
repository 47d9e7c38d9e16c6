"""Job commands on existing jobs: retry and cancel, one job or many, with per-job results.

Commands act on Redis through ``QueueClient``; the recorder writes the resulting state to
Postgres from the events those scripts append, so a command answers with the state the
job is expected to reach.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobdeck.auth import Role
from jobdeck.events import JobStatus, current_attempt
from jobdeck.queues import CancelOutcome, EnqueueOutcome, retry_claim_key

from jobdeck_api import audit, bulk_filter
from jobdeck_api.bulk_filter import BulkRequest, BulkResponse
from jobdeck_api.decisions import (
    RETRY_PENDING,
    Verdict,
    may_cancel,
    may_retry,
    spec_for_retry,
)
from jobdeck_api.errors import Conflict, NotFound
from jobdeck_api.job_batch import Row, act_on_jobs, one_by_one, skipped
from jobdeck_api.job_command_models import (
    MAX_BULK_IDS,
    BulkActionResponse,
    JobActionResult,
    JobOutcome,
)
from jobdeck_api.routing import ApiRequest, ApiRoutes, Bucket
from jobdeck_api.state import QUEUES

routes = ApiRoutes()
TAG = ["jobs"]


def _may_retry(row: Row) -> Verdict:
    return may_retry(row["status"], row.get("added_attempt", 1))


async def _retry(call: ApiRequest[Any, Any], row: Row) -> JobActionResult:
    # One retry per attempt, claimed atomically with the enqueue: the row may be stale
    # (the recorder a moment behind a first retry's run), and both would run attempt n+1.
    spec = spec_for_retry(row)
    claim = retry_claim_key(row["id"], spec.attempt_offset)
    queued = await call.app[QUEUES].enqueue_claimed(
        spec, claim, by=call.principal.sub, replace=True
    )
    if queued is not EnqueueOutcome.QUEUED:
        return skipped(row, RETRY_PENDING)
    return JobActionResult(
        id=row["id"],
        outcome=JobOutcome.RETRIED,
        previous_status=row["status"],
        status=JobStatus.WAITING,
    )


async def _cancel(call: ApiRequest[Any, Any], row: Row) -> JobActionResult:
    outcome = await call.app[QUEUES].cancel(
        row["id"],
        row["queue"],
        row["name"],
        current_attempt(row["attempts"], row["version"]),
        by=call.principal.sub,
    )
    if outcome is CancelOutcome.GONE:
        return skipped(row, "job is no longer queued or running (it may have just finished)")
    return JobActionResult(
        id=row["id"],
        outcome=JobOutcome.CANCELLED
        if outcome is CancelOutcome.CANCELLED
        else JobOutcome.CANCELLING,
        previous_status=row["status"],
        status=JobStatus.CANCELLED,
    )


async def _retry_rows(call: ApiRequest[Any, Any], ids: Sequence[str]) -> list[JobActionResult]:
    return await act_on_jobs(call, ids, _may_retry, one_by_one(_retry))


async def _cancel_rows(call: ApiRequest[Any, Any], ids: Sequence[str]) -> list[JobActionResult]:
    return await act_on_jobs(call, ids, lambda row: may_cancel(row["status"]), one_by_one(_cancel))


def _bulk_response(results: list[JobActionResult]) -> BulkActionResponse:
    counts = {o.value: 0 for o in JobOutcome}
    counts.update(Counter(r.outcome.value for r in results))
    return BulkActionResponse(results=results, counts=counts, total=len(results))


def _audit_outcome(results: list[JobActionResult], done: frozenset[JobOutcome]) -> str:
    n = sum(r.outcome in done for r in results)
    if n == len(results):
        return audit.Outcome.OK
    return audit.Outcome.PARTIAL if n else audit.Outcome.REFUSED


RETRIED = frozenset({JobOutcome.RETRIED})
CANCELLED = frozenset({JobOutcome.CANCELLED, JobOutcome.CANCELLING})

# Acts on jobs by id, one result per id in the same order (NOT_FOUND for a job the caller
# may not see, SKIPPED with the reason for one whose state forbids the action).
JobAction = Callable[[ApiRequest[Any, Any], Sequence[str]], Awaitable[list[JobActionResult]]]


async def act_on_many(
    call: ApiRequest[Any, BulkRequest], action: str, act: JobAction, done: frozenset[JobOutcome]
) -> BulkActionResponse:
    """A bulk command: per-job results and counts, audited as one entry."""
    ids = list(dict.fromkeys(call.body.job_ids or ()))
    response = _bulk_response(await act(call, ids))
    outcome = _audit_outcome(response.results, done)
    await audit.record(call, action, ids, outcome, {"counts": response.counts})
    return response


async def act_by_filter(
    call: ApiRequest[Any, BulkRequest],
    action: str,
    act: JobAction,
    done: frozenset[JobOutcome],
    statuses: list[str],
) -> BulkResponse:
    """The filter form: count (dry run), or act on the oldest ``limit`` matches in batches
    of the id form's size, with its per-job results, audited as one entry."""
    b = call.body
    matched = await bulk_filter.select(call, statuses, bulk_filter.COUNT_CAP)
    if b.dry_run:
        return bulk_filter.dry_run_response(matched)
    chosen = matched[: b.limit]
    results: list[JobActionResult] = []
    for i in range(0, len(chosen), MAX_BULK_IDS):
        results += await act(call, chosen[i : i + MAX_BULK_IDS])
    response = _bulk_response(results)
    detail = {
        "counts": response.counts,
        "matched": len(matched),
        "filter": b.model_dump(mode="json", exclude={"job_ids", "dry_run"}),
    }
    await audit.record(call, action, chosen, _audit_outcome(results, done), detail)
    return bulk_filter.with_match(response, matched, len(chosen))


async def act_on_one(
    call: ApiRequest[Any, Any], action: str, act: JobAction, done: frozenset[JobOutcome]
) -> JobActionResult:
    """A command on the job of the path: 404 if unseen, 409 with the reason if refused."""
    job_id = call.path("id")
    (result,) = await act(call, [job_id])
    outcome = _audit_outcome([result], done)
    detail = {"outcome": result.outcome.value, "reason": result.reason}
    await audit.record(call, action, [job_id], outcome, detail)
    if result.outcome is JobOutcome.NOT_FOUND:
        raise NotFound(f"job {result.id!r} not found")
    if result.outcome is JobOutcome.SKIPPED:
        raise Conflict(result.reason or "job cannot be changed in its current state")
    return result


BULK_IDS_EXAMPLE = {"jobIds": ["job1", "job2", "job3"]}
BULK_FILTER_NOTE = (
    " Or by filter instead of ids: `fingerprint` (from the failure analysis), `queues`,"
    " `jobName`, `startDate`/`endDate` (when the job finished, else was created); `dryRun`"
    " only counts (`matched`); otherwise at most `limit` (default 1,000, max 10,000) jobs"
    " are acted on, oldest first, and `remaining` says how many are left."
)


@routes.route(
    "POST",
    "/api/v1/jobs/bulk/retry",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkRequest,
    response=BulkResponse,
    bucket=Bucket.BULK,
    body_example=BULK_IDS_EXAMPLE,
)
async def bulk_retry(call: ApiRequest[None, BulkRequest]) -> BulkActionResponse:
    """Retry many jobs

    Up to 1,000 ids. Each failed or cancelled job is queued again under its id
    (its next attempt numbered after the last); others are skipped with the reason.
    The filter form selects failed jobs.
    """
    if call.body.job_ids is None:
        statuses = bulk_filter.RETRY_STATUSES
        return await act_by_filter(call, "jobs.bulk_retry", _retry_rows, RETRIED, statuses)
    return await act_on_many(call, "jobs.bulk_retry", _retry_rows, RETRIED)


@routes.route(
    "POST",
    "/api/v1/jobs/bulk/cancel",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkRequest,
    response=BulkResponse,
    bucket=Bucket.BULK,
    body_example=BULK_IDS_EXAMPLE,
)
async def bulk_cancel(call: ApiRequest[None, BulkRequest]) -> BulkActionResponse:
    """Cancel many jobs

    Up to 1,000 ids. Waiting and delayed jobs are removed at once (`cancelled`);
    running jobs are aborted by their worker (`cancelling`); others are skipped.
    The filter form selects waiting, delayed and active jobs.
    """
    if call.body.job_ids is None:
        statuses = bulk_filter.CANCEL_STATUSES
        return await act_by_filter(call, "jobs.bulk_cancel", _cancel_rows, CANCELLED, statuses)
    return await act_on_many(call, "jobs.bulk_cancel", _cancel_rows, CANCELLED)


for _ep in routes.endpoints:
    if _ep.path.startswith("/api/v1/jobs/bulk/"):
        _ep.description += BULK_FILTER_NOTE


@routes.route(
    "POST",
    "/api/v1/jobs/{id}/retry",
    tags=TAG,
    role=Role.OPERATOR,
    response=JobActionResult,
    errors=(404, 409),
)
async def retry_job(call: ApiRequest[None, None]) -> JobActionResult:
    """Retry a failed or cancelled job

    409 if the job is in another state.
    """
    return await act_on_one(call, "jobs.retry", _retry_rows, RETRIED)


@routes.route(
    "POST",
    "/api/v1/jobs/{id}/cancel",
    tags=TAG,
    role=Role.OPERATOR,
    response=JobActionResult,
    errors=(404, 409),
)
async def cancel_job(call: ApiRequest[None, None]) -> JobActionResult:
    """Cancel a waiting, delayed or active job

    409 if the job is in another state.
    """
    return await act_on_one(call, "jobs.cancel", _cancel_rows, CANCELLED)
