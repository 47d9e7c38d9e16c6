"""``GET /api/v1/jobs/workers``: the live worker processes and what each is running.

Read from the worker registry (``jobdeck.depth.worker_statuses``), which every worker
refreshes every few seconds from its housekeeping thread; an entry whose worker stopped
beating expires. A caller sees the workers serving at least one of its token's queues, and
of those only its queues and their running jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jobdeck.depth import WorkerStatus, worker_statuses
from jobdeck.events import now_ms
from jobdeck.web import REDIS
from pydantic import Field

from jobdeck_api.models import Model
from jobdeck_api.routing import ApiRequest, ApiRoutes

routes = ApiRoutes()
TAG = ["workers"]


class RunningJobInfo(Model):
    id: str
    queue: str
    started_at: datetime | None = None


class WorkerQueue(Model):
    name: str
    concurrency: int = Field(description="slots of this worker for the queue (live config)")


class WorkerInfo(Model):
    instance: str
    host: str | None = None
    pid: int | None = None
    queues: list[WorkerQueue]
    concurrency: int = Field(description="slots over the queues shown")
    active: int = Field(description="jobs of the queues shown running now")
    started_at: datetime | None = None
    last_heartbeat: datetime | None = None
    expires_at: datetime = Field(description="when it counts as gone if it stops beating")
    jobs: list[RunningJobInfo]


class WorkerList(Model):
    items: list[WorkerInfo]


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _visible(w: WorkerStatus, call: ApiRequest[None, None]) -> WorkerInfo | None:
    queues = [q for q in w.queues if call.principal.can_see(q)]
    if not queues:
        return None
    jobs = [j for j in w.jobs if j.queue in queues]
    slots = [WorkerQueue(name=q, concurrency=w.queue_concurrency.get(q, 0)) for q in queues]
    everything = len(queues) == len(w.queues)
    return WorkerInfo(
        instance=w.instance,
        host=w.host,
        pid=w.pid,
        queues=slots,
        concurrency=w.concurrency if everything else sum(s.concurrency for s in slots),
        active=w.active if everything else len(jobs),
        started_at=_at(w.started_at),
        last_heartbeat=_at(w.beat_at),
        expires_at=datetime.fromtimestamp(w.expires_at / 1000, tz=UTC),
        jobs=[
            RunningJobInfo(id=j.id, queue=j.queue, started_at=_at(j.started_at))
            for j in sorted(jobs, key=lambda j: (j.started_at or 0, j.id))
        ],
    )


@routes.route("GET", "/api/v1/jobs/workers", tags=TAG, response=WorkerList)
async def list_workers(call: ApiRequest[None, None]) -> WorkerList:
    """List live workers

    Each live worker process: host, pid, the queues it serves with its slots (the queue
    config's concurrency applies per worker), the jobs it runs now with their start
    times, and its last heartbeat. Limited to the queues of the caller's token.
    """
    statuses = await worker_statuses(call.app[REDIS], now_ms())
    items = [info for w in statuses if (info := _visible(w, call)) is not None]
    return WorkerList(items=items)
