"""Enqueue endpoints: one job, or up to 1,000 in one call.

Jobs go to Redis through ``QueueClient``; the recorder writes their rows from the
``added`` events those scripts append, so a job appears in search a moment after the
call answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from jobdeck.auth import Principal, Role
from jobdeck.events import JobStatus, now_ms
from jobdeck.queues import JobSpec
from jobdeck.web import PG
from pydantic_core import to_json

from jobdeck_api import audit
from jobdeck_api.decisions import spec_for_enqueue
from jobdeck_api.errors import BadParameter, Conflict, Forbidden
from jobdeck_api.job_command_models import (
    BulkEnqueueRequest,
    BulkEnqueueResponse,
    EnqueuedJob,
    EnqueueRequest,
)
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest, ApiRoutes, Bucket
from jobdeck_api.state import QUEUES

routes = ApiRoutes()
TAG = ["jobs"]


def _check_queue(principal: Principal, queue: str, where: str) -> None:
    if not principal.can_see(queue):
        raise Forbidden(f"{where}: queue {queue!r} is outside the queues of your token")


async def _specs(call: ApiRequest[Any, Any], requests: Sequence[EnqueueRequest]) -> list[JobSpec]:
    """Resolve templates and queue defaults for a batch with two queries in all."""
    pool = call.app[PG]
    template_ids = sorted({r.template_id for r in requests if r.template_id})
    templates = {}
    if template_ids:
        templates = {t["id"]: t for t in await pool.fetch(Q["templates_for"], template_ids)}
    queues = set()
    for i, r in enumerate(requests):
        where = "body" if len(requests) == 1 else f"jobs.{i}"
        if r.template_id and r.template_id not in templates:
            raise BadParameter(
                f"{where}.templateId: no template {r.template_id!r}",
                [{"in": "body", "name": f"{where}.templateId", "reason": "no such template"}],
            )
        queue = r.queue or templates[r.template_id]["queue"]
        _check_queue(call.principal, queue, where)
        queues.add(queue)
    configs = {c["queue"]: c for c in await pool.fetch(Q["queue_configs_for"], sorted(queues))}
    now = now_ms()
    specs = []
    for r in requests:
        template = templates.get(r.template_id) if r.template_id else None
        queue = r.queue or (template["queue"] if template else "")
        specs.append(spec_for_enqueue(r, now, template, configs.get(queue)))
    ids = [s.job_id for s in specs]
    if len(set(ids)) != len(ids):
        raise BadParameter("jobs: the same jobId appears twice in one request")
    return specs


async def _taken_ids(call: ApiRequest[Any, Any], requests: Sequence[EnqueueRequest]) -> set[str]:
    """Caller-chosen ids that already name a job in Postgres, whatever its queue.

    Redis only refuses an id while the job's hash exists (an hour past its end); a
    finished job's row outlives it, and reusing its id would graft a new job (maybe on
    another queue) onto that row's history. Running a job again is what ``retry`` is for.
    Generated ids are fresh.
    """
    chosen = [r.job_id for r in requests if r.job_id is not None]
    if not chosen:
        return set()
    return {r["id"] for r in await call.app[PG].fetch(Q["existing_job_ids"], chosen)}


def _initial_status(spec: JobSpec, now: int) -> str:
    delayed = spec.run_at_ms is not None and spec.run_at_ms > now
    return JobStatus.DELAYED.value if delayed else JobStatus.WAITING.value


def _enqueued(spec: JobSpec, now: int) -> EnqueuedJob:
    return EnqueuedJob(
        id=spec.job_id,
        queue=spec.queue,
        job_name=spec.name,
        status=JobStatus(_initial_status(spec, now)),
        priority=spec.priority,
        max_attempts=spec.max_attempts,
        run_at=_dt(spec.run_at_ms) if spec.run_at_ms is not None else None,
        created_at=_dt(now),
    )


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@routes.route(
    "POST",
    "/api/v1/jobs",
    tags=TAG,
    role=Role.OPERATOR,
    body=EnqueueRequest,
    response=EnqueuedJob,
    status=201,
    errors=(403, 409),
    body_example={
        "queue": "price-file-parser",
        "name": "price-file-parser",
        "data": {"path": "/data/prices.csv"},
        "priority": 5,
        "delayMs": 0,
        "maxAttempts": 3,
    },
)
async def enqueue_job(call: ApiRequest[None, EnqueueRequest]) -> EnqueuedJob:
    """Enqueue a job

    Give `queue` and `name` (the task), or a `templateId` whose fields are the defaults.
    Unset attempts, backoff and timeout come from the queue's config, else the library
    defaults. The job's row appears in search once the recorder has consumed its event.
    """
    (spec,) = await _specs(call, [call.body])
    taken = bool(await _taken_ids(call, [call.body]))
    ok = not taken and await call.app[QUEUES].enqueue(spec, by=call.principal.sub)
    await audit.record(
        call,
        "jobs.enqueue",
        [spec.job_id],
        audit.Outcome.OK if ok else audit.Outcome.REFUSED,
        {"queue": spec.queue, "name": spec.name},
    )
    if not ok:
        # One answer whatever queue holds the id, so it tells a caller scoped to other
        # queues nothing that a GET (404) would not.
        raise Conflict(f"the job id {spec.job_id!r} is not available; choose another id")
    return _enqueued(spec, now_ms())


@routes.route(
    "POST",
    "/api/v1/jobs/bulk",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkEnqueueRequest,
    response=BulkEnqueueResponse,
    status=201,
    bucket=Bucket.BULK,
    errors=(403,),
    body_example={
        "jobs": [
            {"queue": "price-file-parser", "name": "price-file-parser", "data": {"n": 1}},
            {"templateId": "550e8400-e29b-41d4-a716-446655440000"},
        ]
    },
)
async def enqueue_bulk(call: ApiRequest[None, BulkEnqueueRequest]) -> web.StreamResponse:
    """Enqueue many jobs

    Up to 1,000 jobs in one call, written to Redis in one pipelined round trip.
    The whole request is refused if any job is invalid; a job whose id already exists is
    reported as `duplicate`.
    """
    specs = await _specs(call, call.body.jobs)
    taken = await _taken_ids(call, call.body.jobs)
    fresh = [s for s in specs if s.job_id not in taken]
    queued = iter(await call.app[QUEUES].enqueue_many(fresh, by=call.principal.sub))
    results = [s.job_id not in taken and next(queued) for s in specs]
    now = now_ms()
    # Built as plain JSON (BulkEnqueueResponse's shape): 1,000 models a call cost more
    # than the Redis round trip.
    items = [
        {
            "index": i,
            "id": spec.job_id,
            "outcome": "queued" if ok else "duplicate",
            "status": _initial_status(spec, now) if ok else None,
        }
        for i, (spec, ok) in enumerate(zip(specs, results, strict=True))
    ]
    counts: dict[str, int] = dict(Counter(str(item["outcome"]) for item in items))
    await audit.record(
        call,
        "jobs.bulk_enqueue",
        [s.job_id for s in specs],
        audit.Outcome.OK if all(results) else audit.Outcome.PARTIAL,
        {"counts": counts, "queues": sorted({s.queue for s in specs})},
    )
    return web.Response(
        body=to_json({"items": items, "counts": counts}),
        status=201,
        content_type="application/json",
    )
