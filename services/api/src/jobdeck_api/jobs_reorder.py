"""Reordering jobs that have not started: promote a delayed job to run now, or change a
job's priority. One job each, operators only, audited, 404/409 like retry and cancel.

Both act on Redis (``QueueAdmin``), where the order lives. A promoted job's row says
``delayed`` until a worker starts it (as for any job that comes due); a new priority is
written to the row at once, so that search and sort see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobdeck.auth import Role
from jobdeck.events import JobStatus
from jobdeck.queues.admin import ChangeOutcome
from jobdeck.web import PG

from jobdeck_api.decisions import may_promote, may_reprioritize
from jobdeck_api.job_batch import Row, act_on_jobs, one_by_one, skipped
from jobdeck_api.job_command_models import JobActionResult, JobOutcome, PriorityRequest
from jobdeck_api.jobs_actions import act_on_one
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.state import ADMIN

routes = ApiRoutes()
TAG = ["jobs"]


def _refusal(outcome: ChangeOutcome) -> str:
    if outcome is ChangeOutcome.GONE:
        return "job is no longer queued (it may have just started or finished)"
    return f"job is {outcome.value} now"


async def _promote_one(call: ApiRequest[Any, Any], row: Row) -> JobActionResult:
    outcome = await call.app[ADMIN].promote(row["id"], row["queue"])
    if outcome is not ChangeOutcome.PROMOTED:
        return skipped(row, _refusal(outcome))
    return JobActionResult(
        id=row["id"],
        outcome=JobOutcome.PROMOTED,
        previous_status=row["status"],
        status=JobStatus.WAITING,
    )


async def _promote(call: ApiRequest[Any, Any], ids: Sequence[str]) -> list[JobActionResult]:
    return await act_on_jobs(
        call, ids, lambda row: may_promote(row["status"]), one_by_one(_promote_one)
    )


@routes.route(
    "POST",
    "/api/v1/jobs/{id}/promote",
    tags=TAG,
    role=Role.OPERATOR,
    response=JobActionResult,
    errors=(404, 409),
)
async def promote_job(call: ApiRequest[None, None]) -> JobActionResult:
    """Promote a delayed job

    A job waiting for its run time (or for a retry's backoff) becomes ready now, ranked by
    its priority. 409 if it is not delayed.
    """
    return await act_on_one(call, "jobs.promote", _promote, frozenset({JobOutcome.PROMOTED}))


@routes.route(
    "POST",
    "/api/v1/jobs/{id}/priority",
    tags=TAG,
    role=Role.OPERATOR,
    body=PriorityRequest,
    response=JobActionResult,
    errors=(404, 409),
    body_example={"priority": 50},
)
async def change_priority(call: ApiRequest[None, PriorityRequest]) -> JobActionResult:
    """Change a waiting job's priority

    A waiting job moves to where the new priority ranks it (among jobs of one priority, by
    when it was queued); a delayed one takes it when it comes due. 409 once it has started.
    """
    priority = call.body.priority

    async def change_one(call: ApiRequest[Any, Any], row: Row) -> JobActionResult:
        outcome = await call.app[ADMIN].reprioritize(row["id"], row["queue"], priority)
        if outcome is not ChangeOutcome.CHANGED:
            return skipped(row, _refusal(outcome))
        await call.app[PG].execute(Q["set_priority"], row["id"], priority)
        return JobActionResult(
            id=row["id"],
            outcome=JobOutcome.REPRIORITIZED,
            previous_status=row["status"],
            status=JobStatus(row["status"]),
        )

    async def change(call: ApiRequest[Any, Any], ids: Sequence[str]) -> list[JobActionResult]:
        return await act_on_jobs(
            call, ids, lambda row: may_reprioritize(row["status"]), one_by_one(change_one)
        )

    return await act_on_one(call, "jobs.priority", change, frozenset({JobOutcome.REPRIORITIZED}))
