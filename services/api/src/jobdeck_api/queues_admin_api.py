"""Queue clean-up commands: clean (delete finished jobs older than X) and drain (remove the
waiting jobs). Operators only, audited; both say how many jobs they touch, and both have a
dry run that only counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from jobdeck.auth import Role

from jobdeck_api import audit
from jobdeck_api.bulk_filter import BulkRequest, BulkResponse
from jobdeck_api.job_command_models import BulkActionResponse
from jobdeck_api.jobs_actions import act_by_filter
from jobdeck_api.jobs_remove import FINISHED, REMOVED, remove_jobs
from jobdeck_api.queue_models import CleanRequest, DrainRequest, DrainResult
from jobdeck_api.queues_api import queue_param
from jobdeck_api.routing import ApiRequest, ApiRoutes, Bucket
from jobdeck_api.state import ADMIN

routes = ApiRoutes()
TAG = ["queues"]


@routes.route(
    "POST",
    "/api/v1/jobs/queues/{name}/clean",
    tags=TAG,
    role=Role.OPERATOR,
    body=CleanRequest,
    response=BulkResponse,
    bucket=Bucket.BULK,
    errors=(403,),
    body_example={"olderThanS": 604800, "status": ["completed"], "dryRun": True},
)
async def clean_queue(call: ApiRequest[None, CleanRequest]) -> BulkActionResponse:
    """Clean a queue

    Deletes the queue's jobs that finished (completed, failed and cancelled, or the
    `status` given) more than `olderThanS` seconds ago: rows, log lines and Redis state,
    announced as `jobRemoved`. `dryRun: true` (the default) only counts (`matched`);
    otherwise up to `limit` per call, oldest first, `remaining` saying what is left.
    """
    name = queue_param(call, write=True)
    b = call.body
    selection = BulkRequest(
        queues=[name],
        end_date=datetime.now(UTC) - timedelta(seconds=b.older_than_s),
        dry_run=b.dry_run,
        limit=b.limit,
    )
    statuses = [s.value for s in b.status] if b.status else FINISHED
    cleaning: ApiRequest[None, BulkRequest] = ApiRequest(
        call.request, call.principal, None, selection
    )
    return await act_by_filter(
        cleaning, "queues.clean", partial(remove_jobs, reason="cleaned"), REMOVED, statuses
    )


@routes.route(
    "POST",
    "/api/v1/jobs/queues/{name}/drain",
    tags=TAG,
    role=Role.OPERATOR,
    body=DrainRequest,
    response=DrainResult,
    bucket=Bucket.BULK,
    errors=(403,),
    body_example={"delayed": False, "dryRun": True},
)
async def drain_queue(call: ApiRequest[None, DrainRequest]) -> DrainResult:
    """Drain a queue

    Removes the queue's waiting jobs (and its delayed ones with `delayed: true`), each
    recorded as cancelled by the caller; running jobs go on. `dryRun: true` only counts.
    """
    name = queue_param(call, write=True)
    admin = call.app[ADMIN]
    pending = await admin.pending(name)
    if call.body.dry_run:
        return DrainResult(
            queue=name, waiting=pending.waiting, delayed=pending.delayed, drained=0, dry_run=True
        )
    drained = await admin.drain(name, call.body.delayed, call.principal.sub)
    await audit.record(
        call,
        "queues.drain",
        [name],
        audit.Outcome.OK,
        {"drained": drained, "delayed": call.body.delayed},
    )
    return DrainResult(
        queue=name,
        waiting=pending.waiting,
        delayed=pending.delayed,
        drained=drained,
        dry_run=False,
    )
