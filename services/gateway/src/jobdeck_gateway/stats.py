"""Queue and system statistics: measured from Redis and Postgres, shaped for clients.

Measuring is cheap but not free (a few Postgres aggregates), so one replica — the holder
of a short Redis lease — measures each interval, stores the snapshot in Redis and
evaluates the alerts; every replica reads the snapshot and emits ``queueStats`` and
``systemStats`` to its own clients.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from jobdeck.lag import read_recorder_lag
from jobdeck.queues import PAUSED, WORKERS, WORKERS_INFO, queue_key
from jobdeck.streams import EVENTS
from redis.asyncio import Redis

from jobdeck_gateway.sql import QUERIES

RECORDER_GROUP = "recorder"
THROUGHPUT_WINDOW_S = 60


@dataclass
class QueueSnapshot:
    waiting: int = 0
    active: int = 0
    delayed: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    paused: bool = False
    throughput: float = 0.0  # jobs finished per minute, over the last minute
    workers: int = 0


@dataclass
class Snapshot:
    ts: int
    queues: dict[str, QueueSnapshot] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    recorder_lag: int | None = None
    alert_rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "ts": self.ts,
                "queues": {q: vars(s) for q, s in self.queues.items()},
                "workers": self.workers,
                "recorder_lag": self.recorder_lag,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Snapshot:
        d = json.loads(raw)
        return cls(
            ts=d["ts"],
            queues={q: QueueSnapshot(**s) for q, s in d["queues"].items()},
            workers=d["workers"],
            recorder_lag=d["recorder_lag"],
        )


def _worker_queues(info: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for item in info.get("queues") or ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    return names


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
            }
        )
    return found


async def recorder_lag(redis: Redis) -> int | None:
    """Entries not yet in Postgres: what the recorder publishes, else its group's XINFO lag."""
    published = await read_recorder_lag(redis)
    if published is not None:
        return published.behind
    try:
        groups = await redis.xinfo_groups(EVENTS)
    except Exception:
        return None
    for group in groups:
        name = group.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == RECORDER_GROUP:
            lag = group.get("lag")
            return int(lag) if lag is not None else None
    return None


async def measure(redis: Redis, pg: asyncpg.Pool) -> Snapshot:
    """One snapshot of every known queue (known = recorded, configured, paused or served)."""
    now = int(time.time() * 1000)
    snap = Snapshot(ts=now)
    async with pg.acquire() as conn:
        counts = await conn.fetch(QUERIES["status_counts"])
        recent = await conn.fetch(QUERIES["recent_finished"], THROUGHPUT_WINDOW_S)
        alert_rows = await conn.fetch(QUERIES["alert_inputs"])
    paused = {k.decode() for k in await redis.hkeys(PAUSED)}  # type: ignore[misc]
    workers = await live_workers(redis, now)
    names = {r["queue"] for r in counts} | {r["queue"] for r in alert_rows} | paused
    for w in workers:
        names.update(w["queues"])
    for q in sorted(names):
        snap.queues[q] = QueueSnapshot(paused=q in paused)
    for r in counts:
        setattr(snap.queues[r["queue"]], r["status"], int(r["n"]))
    for r in recent:
        snap.queues[r["queue"]].throughput = float(r["finished"]) * 60 / THROUGHPUT_WINDOW_S
    async with redis.pipeline(transaction=False) as pipe:
        for q in snap.queues:
            pipe.zcount(queue_key(q), "-inf", now)
            pipe.zcount(queue_key(q), f"({now}", "+inf")
        zcounts = await pipe.execute()
    for i, (q, s) in enumerate(snap.queues.items()):
        ready, delayed = int(zcounts[2 * i]), int(zcounts[2 * i + 1])
        # arq keeps a running job in the queue's sorted set until it finishes.
        s.waiting = max(ready - s.active, 0)
        s.delayed = delayed
        s.workers = sum(1 for w in workers if q in w["queues"])
    snap.workers = workers
    snap.recorder_lag = await recorder_lag(redis)
    snap.alert_rows = [dict(r) for r in alert_rows]
    return snap


def queue_stats_payload(queue: str, s: QueueSnapshot, ts: int) -> dict[str, Any]:
    return {
        "queue": queue,
        "ts": ts,
        "waiting": s.waiting,
        "active": s.active,
        "delayed": s.delayed,
        "completed": s.completed,
        "failed": s.failed,
        "paused": s.paused,
        "throughput": s.throughput,
        "workers": s.workers,
    }


def system_stats_payload(snap: Snapshot, visible: frozenset[str] | None) -> dict[str, Any]:
    """System totals over the queues one token may see (None = every queue)."""
    queues = {q: s for q, s in snap.queues.items() if visible is None or q in visible}
    workers = [w for w in snap.workers if visible is None or any(q in visible for q in w["queues"])]
    totals = {
        key: sum(getattr(s, key) for s in queues.values())
        for key in ("waiting", "active", "delayed", "completed", "failed")
    }
    return {
        "ts": snap.ts,
        "queues": len(queues),
        "pausedQueues": sum(1 for s in queues.values() if s.paused),
        "totals": totals,
        "workers": {
            "live": len(workers),
            "busy": sum(1 for w in workers if w["active"] > 0),
            "concurrency": sum(w["concurrency"] for w in workers),
            "activeJobs": sum(w["active"] for w in workers),
        },
        "throughput": sum(s.throughput for s in queues.values()),
        "recorderLag": snap.recorder_lag,
    }
