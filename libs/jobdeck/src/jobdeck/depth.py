"""What "waiting", "delayed" and "active" mean for a queue, measured live.

One definition, shared by the REST queue list and the gateway's ``queueStats``, so that a
dashboard showing both never shows two numbers for the same word:

- ``active``: jobs running now, as the live workers report them per queue every
  heartbeat (the worker registry); for a queue no live worker reports, the jobs recorded
  as ``active`` in Postgres (the caller passes those);
- ``waiting``: jobs in the queue's ready set (running jobs are not in it);
- ``delayed``: jobs in the queue's delayed set (due time still ahead, or a retry backing off).

The Redis layout read here is the queue protocol's (``jobdeck.queues``); it changes with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from jobdeck.queues import WORKERS, WORKERS_INFO, queue_counts


@dataclass(frozen=True)
class LiveWorker:
    """One worker process whose registry entry has not expired."""

    instance: str
    queues: list[str]
    concurrency: int
    active: int
    queue_active: dict[str, int] = field(default_factory=dict)  # empty if it does not report
    queue_concurrency: dict[str, int] = field(default_factory=dict)  # likewise


@dataclass(frozen=True)
class QueueDepth:
    waiting: int = 0
    delayed: int = 0
    active: int = 0
    queued_in_redis: int = 0  # waiting + delayed: the jobs Redis holds for a worker to take


def _worker_queues(info: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for item in info.get("queues") or ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    return names


def per_queue(info: Mapping[str, Any], key: str) -> dict[str, int]:
    """A figure (``active``, ``concurrency``) per queue as a worker reports it
    (``per_queue``; empty if it does not)."""
    reported = info.get("per_queue")
    if not isinstance(reported, dict):
        return {}
    found: dict[str, int] = {}
    for q, entry in reported.items():
        value = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(q, str) and isinstance(value, int) and not isinstance(value, bool):
            found[q] = max(value, 0)
    return found


def parse_worker(instance: str, raw: bytes | str | None) -> LiveWorker:
    """A registry entry; an unreadable one is a worker that serves nothing we can name."""
    try:
        info = json.loads(raw) if raw else {}
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    return LiveWorker(
        instance=instance,
        queues=_worker_queues(info),
        concurrency=_int(info.get("concurrency")),
        active=_int(info.get("active")),
        queue_active=per_queue(info, "active"),
        queue_concurrency=per_queue(info, "concurrency"),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class RunningJob:
    id: str
    queue: str
    started_at: int | None


@dataclass(frozen=True)
class WorkerStatus:
    """Everything a live worker advertises (the "busy" page), not just its counts."""

    instance: str
    host: str | None
    pid: int | None
    queues: list[str]
    concurrency: int
    active: int
    queue_concurrency: dict[str, int]
    started_at: int | None
    beat_at: int | None
    expires_at: int
    jobs: list[RunningJob]


def parse_worker_status(instance: str, raw: bytes | str | None, expires_at: int) -> WorkerStatus:
    """A registry entry in full; unreadable parts are left empty, never an error."""
    brief = parse_worker(instance, raw)
    try:
        info = json.loads(raw) if raw else {}
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    per_queue = info.get("per_queue")
    if not isinstance(per_queue, dict):
        per_queue = {}
    jobs = [
        RunningJob(j["id"], j["queue"], _opt_int(j.get("started_at")))
        for j in info.get("jobs") or ()
        if isinstance(j, dict) and isinstance(j.get("id"), str) and isinstance(j.get("queue"), str)
    ]
    host = info.get("host")
    return WorkerStatus(
        instance=instance,
        host=host if isinstance(host, str) else None,
        pid=_opt_int(info.get("pid")),
        queues=brief.queues,
        concurrency=brief.concurrency,
        active=brief.active,
        queue_concurrency={
            q: _int(e.get("concurrency"))
            for q, e in per_queue.items()
            if isinstance(q, str) and isinstance(e, dict)
        },
        started_at=_opt_int(info.get("started_at")),
        beat_at=_opt_int(info.get("beat_at")),
        expires_at=expires_at,
        jobs=jobs,
    )


async def worker_statuses(redis: Redis, now_ms: int) -> list[WorkerStatus]:
    """Every worker whose registry entry has not expired, in full, by instance id."""
    members = await redis.zrangebyscore(WORKERS, now_ms, "+inf", withscores=True)
    if not members:
        return []
    infos = await redis.hmget(WORKERS_INFO, [m for m, _ in members])  # type: ignore[misc]
    found = [
        parse_worker_status(m.decode() if isinstance(m, bytes) else str(m), raw, int(score))
        for (m, score), raw in zip(members, infos, strict=True)
    ]
    return sorted(found, key=lambda w: w.instance)


async def live_workers(redis: Redis, now_ms: int) -> list[LiveWorker]:
    """Workers whose registry entry has not expired, with what they advertise."""
    members = await redis.zrangebyscore(WORKERS, now_ms, "+inf")
    if not members:
        return []
    infos = await redis.hmget(WORKERS_INFO, members)  # type: ignore[misc]
    return [
        parse_worker(m.decode() if isinstance(m, bytes) else str(m), raw)
        for m, raw in zip(members, infos, strict=True)
    ]


def live_active(workers: Iterable[LiveWorker]) -> dict[str, int]:
    """Running jobs per queue over the live workers, for the queues some worker reports."""
    totals: dict[str, int] = {}
    for w in workers:
        for q, n in w.queue_active.items():
            totals[q] = totals.get(q, 0) + n
    return totals


def workers_per_queue(workers: Iterable[LiveWorker]) -> dict[str, int]:
    """Live worker processes serving each queue."""
    counts: dict[str, int] = {}
    for w in workers:
        for q in w.queues:
            counts[q] = counts.get(q, 0) + 1
    return counts


async def queue_depths(
    redis: Redis,
    queues: Iterable[str],
    now_ms: int,
    workers: Iterable[LiveWorker],
    recorded_active: Mapping[str, int],
) -> dict[str, QueueDepth]:
    """Waiting, delayed and active per queue, in one pipelined round trip to Redis."""
    names = list(queues)
    running = dict(recorded_active)
    running.update(live_active(workers))
    counts = await queue_counts(redis, names)
    return {
        q: QueueDepth(
            waiting=counts[q].waiting,
            delayed=counts[q].delayed,
            active=running.get(q, 0),
            queued_in_redis=counts[q].waiting + counts[q].delayed,
        )
        for q in names
    }
