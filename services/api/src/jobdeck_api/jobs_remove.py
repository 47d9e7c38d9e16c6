"""Deleting finished jobs: one, many by id, or what a filter selects (with a dry run).

A deleted job is gone from Redis (``QueueAdmin.remove``) and from Postgres (its row and
log lines, in one statement that also leaves a tombstone, so that an event of the job
delivered again later cannot bring the row back), audited, and announced on the stream
(``removed``, which the gateway sends as ``jobRemoved``). Only finished jobs (completed,
failed, cancelled) can be deleted: a queued or running one is cancelled first.

The API writes these deletions itself rather than through the recorder: removing history
is not a job state the workers report, and the caller gets a definite answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from jobdeck.auth import Role
from jobdeck.events import Event, EventType, now_ms
from jobdeck.queues.admin import RemoveOutcome
from jobdeck.streams import EventStream
from jobdeck.web import PG, REDIS, SETTINGS

from jobdeck_api.bulk_filter import BulkRequest, BulkResponse
from jobdeck_api.decisions import may_delete
from jobdeck_api.job_batch import Row, act_on_jobs, skipped
from jobdeck_api.job_command_models import BulkActionResponse, JobActionResult, JobOutcome
from jobdeck_api.jobs_actions import (
    BULK_FILTER_NOTE,
    BULK_IDS_EXAMPLE,
    act_by_filter,
    act_on_many,
    act_on_one,
)
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest, ApiRoutes, Bucket
from jobdeck_api.state import ADMIN

routes = ApiRoutes()
TAG = ["jobs"]
REMOVED = frozenset({JobOutcome.REMOVED})
FINISHED = ["completed", "failed", "cancelled"]


async def remove_jobs(
    call: ApiRequest[Any, Any], ids: Sequence[str], reason: str = "deleted"
) -> list[JobActionResult]:
    """Delete each finished, visible job of ``ids``; one result per id, in order."""

    async def remove(call: ApiRequest[Any, Any], rows: list[Row]) -> list[JobActionResult]:
        return await _remove(call, rows, reason)

    return await act_on_jobs(call, ids, lambda row: may_delete(row["status"]), remove)


async def _remove(
    call: ApiRequest[Any, Any], candidates: list[Row], reason: str
) -> list[JobActionResult]:
    """Redis first, then the history of the jobs Redis saw finished, then the announcement;
    all in batches."""
    results: dict[str, JobActionResult] = {}
    redis_outcomes = await call.app[ADMIN].remove([r["id"] for r in candidates])
    finished = []
    for row, outcome in zip(candidates, redis_outcomes, strict=True):
        if outcome.finished:
            finished.append(row)
        else:
            results[row["id"]] = skipped(row, _queued_again(outcome))
    deleted = await _delete_history(call, [r["id"] for r in finished])
    for row in finished:
        if row["id"] in deleted:
            results[row["id"]] = JobActionResult(
                id=row["id"], outcome=JobOutcome.REMOVED, previous_status=row["status"]
            )
        else:  # changed under us (a retry recorded meanwhile): not deleted
            results[row["id"]] = skipped(row, "job is no longer finished")
    await _announce(call, {r["id"]: r["queue"] for r in finished if r["id"] in deleted}, reason)
    return [results[r["id"]] for r in candidates]


def _queued_again(outcome: RemoveOutcome) -> str:
    return f"job is {outcome.value} again (a retry); delete it once it has finished"


async def _delete_history(call: ApiRequest[Any, Any], ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    gone = await call.app[PG].fetch(Q["delete_jobs"], list(ids), call.principal.sub)
    return {r["id"] for r in gone}


async def _announce(call: ApiRequest[Any, Any], queues: Mapping[str, str], reason: str) -> None:
    """One ``removed`` event per queue, listing its deleted job ids."""
    per_queue: dict[str, list[str]] = defaultdict(list)
    for job_id, queue in queues.items():
        per_queue[queue].append(job_id)
    now = now_ms()
    stream = EventStream(call.app[REDIS], call.app[SETTINGS].stream_maxlen)
    await stream.publish_many(
        Event(
            type=EventType.REMOVED,
            queue=queue,
            ts=now,
            fields={"job_ids": job_ids, "by": call.principal.sub, "reason": reason},
        )
        for queue, job_ids in per_queue.items()
    )


@routes.route(
    "POST",
    "/api/v1/jobs/bulk/delete",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkRequest,
    response=BulkResponse,
    bucket=Bucket.BULK,
    body_example=BULK_IDS_EXAMPLE,
)
async def bulk_delete(call: ApiRequest[None, BulkRequest]) -> BulkActionResponse:
    """Delete many finished jobs

    Up to 1,000 ids. Each completed, failed or cancelled job is removed from Redis and
    Postgres (row and log lines) and announced as `jobRemoved`; others are skipped with the
    reason (a queued or running job is cancelled first). The filter form selects finished
    jobs.
    """
    if call.body.job_ids is None:
        return await act_by_filter(call, "jobs.bulk_delete", remove_jobs, REMOVED, FINISHED)
    return await act_on_many(call, "jobs.bulk_delete", remove_jobs, REMOVED)


routes.endpoints[-1].description += BULK_FILTER_NOTE


@routes.route(
    "DELETE",
    "/api/v1/jobs/{id}",
    tags=TAG,
    role=Role.OPERATOR,
    response=JobActionResult,
    errors=(404, 409),
)
async def delete_job(call: ApiRequest[None, None]) -> JobActionResult:
    """Delete a finished job

    Its row, log lines and Redis state; announced as `jobRemoved`. 409 if it is queued or
    running (cancel it first).
    """
    return await act_on_one(call, "jobs.delete", remove_jobs, REMOVED)
