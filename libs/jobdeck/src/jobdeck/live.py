"""The live state of queues: what runs, waits and is delayed right now, and who serves them.

One definition of "waiting" for the whole product: the gateway's ``queueStats`` and the
analytics API both read these functions, so the numbers a dashboard shows live and the
numbers an analytics page shows agree.

- ``waiting`` / ``delayed``: from the queue's sorted set in Redis (due / not due yet);
  arq keeps a running job in that set until it finishes, so the running ones are taken
  off the due count;
- ``active``: from the worker registry (each worker reports its running jobs per queue
  every heartbeat); for a queue no live worker reports, the recorded ``active`` rows;
- ``workers``: live worker instances serving the queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from jobdeck.queues import WORKERS, WORKERS_INFO, queue_key

# Running jobs per queue as recorded (the fallback where no live worker reports its own);
# jobs_live_queue_idx holds only unfinished rows, so this never reads the whole table.
RECORDED_ACTIVE_SQL = """
SELECT queue, count(*)::bigint AS n
FROM jobs
WHERE status = 'active'
GROUP BY queue
"""


@dataclass(frozen=True, slots=True)
class LiveCounts:
    waiting: int = 0
    active: int = 0
    delayed: int = 0
    workers: int = 0


def _worker_queues(info: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for item in info.get("queues") or ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    return names


def per_queue_active(info: Mapping[str, Any]) -> dict[str, int]:
    """Running jobs per queue as a worker reports them (``per_queue``; empty if it does not)."""
    per_queue = info.get("per_queue")
    if not isinstance(per_queue, dict):
        return {}
    found: dict[str, int] = {}
    for q, entry in per_queue.items():
        active = entry.get("active") if isinstance(entry, dict) else None
        if isinstance(q, str) and isinstance(active, int) and not isinstance(active, bool):
            found[q] = max(active, 0)
    return found


def live_active(workers: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Running jobs per queue over the live workers, for the queues some worker reports."""
    totals: dict[str, int] = {}
    for w in workers:
        for q, n in (w.get("queue_active") or {}).items():
            totals[q] = totals.get(q, 0) + int(n)
    return totals


async def live_workers(redis: Redis, now_ms: int) -> list[dict[str, Any]]:
    """Workers whose registry entry has not expired, with their advertised info."""
    members = await redis.zrangebyscore(WORKERS, now_ms, "+inf")
    if not members:
        return []
    infos = await redis.hmget(WORKERS_INFO, members)  # type: ignore[misc]
    found = []
    for member, raw in zip(members, infos, strict=True):
        try:
            info = json.loads(raw) if raw else {}
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        found.append(
            {
                "instance": member.decode() if isinstance(member, bytes) else str(member),
                "queues": _worker_queues(info),
                "concurrency": int(info.get("concurrency") or 0),
                "active": int(info.get("active") or 0),
                "queue_active": per_queue_active(info),
            }
        )
    return found


async def recorded_active(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    return {r["queue"]: int(r["n"]) for r in await conn.fetch(RECORDED_ACTIVE_SQL)}


async def live_counts(
    redis: Redis,
    queues: Iterable[str],
    now_ms: int,
    workers: list[dict[str, Any]],
    recorded: Mapping[str, int],
) -> dict[str, LiveCounts]:
    """Waiting, active, delayed and workers of each queue, measured now."""
    names = list(dict.fromkeys(queues))
    running = dict(recorded)
    running.update(live_active(workers))
    async with redis.pipeline(transaction=False) as pipe:
        for q in names:
            pipe.zcount(queue_key(q), "-inf", now_ms)
            pipe.zcount(queue_key(q), f"({now_ms}", "+inf")
        zcounts = await pipe.execute()
    found: dict[str, LiveCounts] = {}
    for i, q in enumerate(names):
        ready, delayed = int(zcounts[2 * i]), int(zcounts[2 * i + 1])
        active = running.get(q, 0)
        found[q] = LiveCounts(
            waiting=max(ready - active, 0),
            active=active,
            delayed=delayed,
            workers=sum(1 for w in workers if q in w["queues"]),
        )
    return found
