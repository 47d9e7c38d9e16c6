"""What "waiting", "delayed" and "active" mean for a queue, measured live.

One definition, shared by the REST queue list and the gateway's ``queueStats``, so that a
dashboard showing both never shows two numbers for the same word:

- ``active``: jobs running now, as the live workers report them per queue every
  heartbeat (the worker registry); for a queue no live worker reports, the jobs recorded
  as ``active`` in Postgres (the caller passes those);
- ``waiting``: jobs due in the queue's sorted set that are not running (arq keeps a
  running job in the sorted set until it finishes, so the running ones are subtracted);
- ``delayed``: jobs in the sorted set whose due time is still ahead.

The Redis layout read here is the queue protocol's (``jobdeck.queues``); it changes with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from jobdeck.queues import WORKERS, WORKERS_INFO, queue_key


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
    queued_in_redis: int = 0  # every entry of the sorted set: waiting + delayed + running


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
    async with redis.pipeline(transaction=False) as pipe:
        for q in names:
            pipe.zcount(queue_key(q), "-inf", now_ms)
            pipe.zcount(queue_key(q), f"({now_ms}", "+inf")
        counts = await pipe.execute()
    depths = {}
    for i, q in enumerate(names):
        ready, delayed = int(counts[2 * i]), int(counts[2 * i + 1])
        active = running.get(q, 0)
        depths[q] = QueueDepth(
            waiting=max(ready - active, 0),
            delayed=delayed,
            active=active,
            queued_in_redis=ready + delayed,
        )
    return depths
