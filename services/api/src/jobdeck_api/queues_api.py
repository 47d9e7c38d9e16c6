"""Queue endpoints: list with live counts and schedules, pause/resume, config CRUD.

Pause and resume go through ``QueueClient`` (a Redis flag, the queue-state event and a
control message the workers obey); configs are rows of ``job_queue_configs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from jobdeck.auth import Role
from jobdeck.depth import live_workers, queue_depths, workers_per_queue
from jobdeck.events import now_ms
from jobdeck.filters import QUEUE_PATTERN
from jobdeck.sql import SHARED
from jobdeck.web import PG, REDIS

from jobdeck_api import audit
from jobdeck_api.errors import BadParameter, Forbidden, NotFound
from jobdeck_api.queries import Q
from jobdeck_api.queue_models import (
    QueueConfig,
    QueueConfigInput,
    QueueCounts,
    QueueInfo,
    QueueList,
    QueueState,
    ScheduleBrief,
)
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.state import QUEUES

routes = ApiRoutes()
TAG = ["queues"]
_QUEUE_RE = re.compile(QUEUE_PATTERN)


def queue_param(call: ApiRequest[Any, Any], write: bool = False) -> str:
    name = call.path("name")
    if not _QUEUE_RE.match(name):
        raise BadParameter(
            f"name: {name!r} is not a queue name (letters, digits, . _ : -; at most 100)",
            [{"in": "path", "name": "name", "reason": "not a queue name"}],
        )
    if not call.principal.can_see(name):
        if write:
            raise Forbidden(f"queue {name!r} is outside the queues of your token")
        raise NotFound(f"queue {name!r} not found")
    return name


def _config(row: Mapping[str, Any]) -> QueueConfig:
    return QueueConfig.model_validate({k: v for k, v in dict(row).items() if k != "inserted"})


@routes.route("GET", "/api/v1/jobs/queues", tags=TAG, response=QueueList)
async def list_queues(call: ApiRequest[None, None]) -> QueueList:
    """List queues

    Every queue the caller may see (configured, with jobs or schedules, paused or served
    by a worker),
    with its config, live counts, paused state, live workers and schedules with their next
    run times. The counts mean what the socket's `queueStats` means: `waiting` = due in
    Redis and not running, `delayed` = not due yet, `active` = running as the live workers
    report it (the recorded rows for a queue no live worker serves), `queuedInRedis` = all
    of the queue's entries in Redis.
    """
    pool = call.app[PG]
    client = call.app[QUEUES]
    redis = call.app[REDIS]
    now = now_ms()
    configs = {r["queue"]: r for r in await pool.fetch(Q["all_queue_configs"])}
    known = {r["queue"] for r in await pool.fetch(SHARED["known_queues"])}
    recorded_active = {r["queue"]: int(r["n"]) for r in await pool.fetch(SHARED["active_counts"])}
    paused = await client.paused_queues()
    live = await live_workers(redis, now)
    workers = workers_per_queue(live)
    scheduled = {r["queue"] for r in await pool.fetch(Q["scheduled_queues"])}
    names = sorted(
        call.principal.visible(set(configs) | known | set(paused) | set(workers) | scheduled)
    )
    depths = await queue_depths(redis, names, now, live, recorded_active)
    counts = {n: QueueCounts.model_validate(asdict(depths[n])) for n in names}
    schedules: dict[str, list[ScheduleBrief]] = {n: [] for n in names}
    for s in await pool.fetch(Q["queue_schedules"], names):
        schedules[s["queue"]].append(
            ScheduleBrief.model_validate({k: v for k, v in dict(s).items() if k != "queue"})
        )
    items = []
    for n in names:
        p = paused.get(n)
        items.append(
            QueueInfo(
                name=n,
                paused=p is not None,
                paused_by=p.get("by") if p else None,
                paused_at=datetime.fromtimestamp(p["at"] / 1000, tz=UTC)
                if p and isinstance(p.get("at"), int)
                else None,
                counts=counts[n],
                workers=workers.get(n, 0),
                config=_config(configs[n]) if n in configs else None,
                schedules=schedules[n],
            )
        )
    return QueueList(items=items)


@routes.route(
    "POST",
    "/api/v1/jobs/queues/{name}/pause",
    tags=TAG,
    role=Role.OPERATOR,
    response=QueueState,
    errors=(403,),
)
async def pause_queue(call: ApiRequest[None, None]) -> QueueState:
    """Pause a queue

    Its workers finish what they run and take no new job until it is resumed; a
    `queue.paused` event is published.
    """
    name = queue_param(call, write=True)
    await call.app[QUEUES].pause(name, by=call.principal.sub)
    await audit.record(call, "queues.pause", [name], audit.Outcome.OK)
    return QueueState(queue=name, paused=True)


@routes.route(
    "POST",
    "/api/v1/jobs/queues/{name}/resume",
    tags=TAG,
    role=Role.OPERATOR,
    response=QueueState,
    errors=(403,),
)
async def resume_queue(call: ApiRequest[None, None]) -> QueueState:
    """Resume a paused queue

    Its workers pick up jobs again at once; a `queue.resumed` event is published.
    """
    name = queue_param(call, write=True)
    await call.app[QUEUES].resume(name, by=call.principal.sub)
    await audit.record(call, "queues.resume", [name], audit.Outcome.OK)
    return QueueState(queue=name, paused=False)


@routes.route(
    "GET",
    "/api/v1/jobs/queues/{name}/config",
    tags=TAG,
    response=QueueConfig,
    errors=(404,),
)
async def get_queue_config(call: ApiRequest[None, None]) -> QueueConfig:
    """Get a queue's config"""
    name = queue_param(call)
    row = await call.app[PG].fetchrow(Q["queue_config"], name)
    if row is None:
        raise NotFound(f"queue {name!r} has no config (the defaults apply)")
    return _config(row)


@routes.route(
    "PUT",
    "/api/v1/jobs/queues/{name}/config",
    tags=TAG,
    role=Role.ADMIN,
    body=QueueConfigInput,
    response=QueueConfig,
    errors=(403,),
    body_example={
        "concurrency": 10,
        "timeoutS": 300,
        "maxAttempts": 3,
        "backoffMs": 1000,
        "alertFailureRate": 0.2,
        "alertWaitingBacklog": 1000,
    },
)
async def put_queue_config(call: ApiRequest[None, QueueConfigInput]) -> QueueConfig:
    """Create or replace a queue's config

    Concurrency (per worker process, applied live by every worker of the queue in place
    of its command line's), timeout, attempts and backoff (defaults for new jobs of the
    queue), alert thresholds, and retention (days finished jobs and their logs are kept
    before the recorder's pruner deletes them). Fields left out take their defaults.
    """
    name = queue_param(call, write=True)
    b = call.body
    row = await call.app[PG].fetchrow(
        Q["upsert_queue_config"],
        name,
        b.concurrency,
        b.timeout_s,
        b.max_attempts,
        b.backoff_ms,
        b.alert_failure_rate,
        b.alert_failure_window_s,
        b.alert_waiting_backlog,
        b.alert_oldest_waiting_s,
        b.description,
        call.principal.sub,
        b.keep_completed_days,
        b.keep_failed_days,
        b.keep_logs_days,
    )
    assert row is not None
    await call.app[QUEUES].set_concurrency(name, b.concurrency)
    await audit.record(
        call,
        "queues.config_create" if row["inserted"] else "queues.config_update",
        [name],
        audit.Outcome.OK,
        b.model_dump(by_alias=True),
    )
    return _config(row)


@routes.route(
    "DELETE",
    "/api/v1/jobs/queues/{name}/config",
    tags=TAG,
    role=Role.ADMIN,
    response=QueueState,
    errors=(403, 404),
)
async def delete_queue_config(call: ApiRequest[None, None]) -> QueueState:
    """Delete a queue's config

    The queue's new jobs then take the library defaults, and its workers their command
    line's concurrency.
    """
    name = queue_param(call, write=True)
    deleted = await call.app[PG].fetchval(Q["delete_queue_config"], name)
    if deleted is not None:
        await call.app[QUEUES].set_concurrency(name, None)
    await audit.record(
        call, "queues.config_delete", [name], audit.Outcome.OK if deleted else audit.Outcome.REFUSED
    )
    if deleted is None:
        raise NotFound(f"queue {name!r} has no config")
    paused = name in await call.app[QUEUES].paused_queues()
    return QueueState(queue=name, paused=paused)
