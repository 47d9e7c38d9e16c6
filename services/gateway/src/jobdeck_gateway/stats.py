"""Queue and system statistics: measured from Redis and Postgres, shaped for clients.

One replica — the holder of a short Redis lease — measures each interval, stores the
snapshot in Redis and evaluates the alerts; every replica reads the snapshot and emits
``queueStats`` and ``systemStats`` to its own clients.

Where each number comes from, so that a tick stays cheap on a jobs table of millions of
rows (no query reads the whole table; see ``sql/queries.sql``):

- ``waiting`` / ``delayed``: live, from the queue's sorted set in Redis (due / not due);
- ``active``: live, from the worker registry (each worker reports its running jobs per
  queue every heartbeat); for a queue no live worker reports, the recorded ``active`` rows;
- ``completed`` / ``failed``: jobs that completed / failed for good within the last
  ``window_s`` seconds (an hour by default), not all-time totals: counting those means
  reading every row ever kept, and the API's job search answers that question;
- ``throughput``: jobs finished for good per minute, over the last minute.
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
DEFAULT_WINDOW_S = 3600


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
    # completed / failed / cancelled count the jobs finished within ``Snapshot.window_s``


@dataclass
class Snapshot:
    ts: int
    queues: dict[str, QueueSnapshot] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    recorder_lag: int | None = None
    alert_rows: list[dict[str, Any]] = field(default_factory=list)
    window_s: int = DEFAULT_WINDOW_S

    def to_json(self) -> str:
        return json.dumps(
            {
                "ts": self.ts,
                "queues": {q: vars(s) for q, s in self.queues.items()},
                "workers": self.workers,
                "recorder_lag": self.recorder_lag,
                "window_s": self.window_s,
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
            window_s=int(d.get("window_s") or DEFAULT_WINDOW_S),
        )


def _worker_queues(info: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for item in info.get("queues") or ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    return names


def _per_queue(info: dict[str, Any], key: str) -> dict[str, int]:
    """A worker's ``per_queue`` figure (``active``, ``concurrency``) by queue; empty if it
    does not report one."""
    per_queue = info.get("per_queue")
    if not isinstance(per_queue, dict):
        return {}
    found: dict[str, int] = {}
    for q, entry in per_queue.items():
        value = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(q, str) and isinstance(value, int) and not isinstance(value, bool):
            found[q] = max(value, 0)
    return found


def live_active(workers: list[dict[str, Any]]) -> dict[str, int]:
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
                "queue_active": _per_queue(info, "active"),
                "queue_concurrency": _per_queue(info, "concurrency"),
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


async def measure(redis: Redis, pg: asyncpg.Pool, window_s: int = DEFAULT_WINDOW_S) -> Snapshot:
    """One snapshot of every known queue (known = recorded, configured, paused or served)."""
    now = int(time.time() * 1000)
    snap = Snapshot(ts=now, window_s=window_s)
    async with pg.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        # Small index scans: JIT compiling them (the planner's row estimates for the
        # windowed counts are pessimistic) would cost ~100 ms for ~10 ms of work.
        await conn.execute("SET LOCAL jit = off")
        recorded = await conn.fetch(QUERIES["known_queues"])
        recorded_active = await conn.fetch(QUERIES["active_counts"])
        recent = await conn.fetch(QUERIES["recent_finished"], window_s, THROUGHPUT_WINDOW_S)
        alert_rows = await conn.fetch(QUERIES["alert_inputs"])
    paused = {k.decode() for k in await redis.hkeys(PAUSED)}  # type: ignore[misc]
    workers = await live_workers(redis, now)
    names = (
        {r["queue"] for r in recorded}
        | {r["queue"] for r in recent}
        | {r["queue"] for r in alert_rows}
        | paused
    )
    for w in workers:
        names.update(w["queues"])
    for q in sorted(names):
        snap.queues[q] = QueueSnapshot(paused=q in paused)
    running = {r["queue"]: int(r["n"]) for r in recorded_active}
    running.update(live_active(workers))
    for r in recent:
        s = snap.queues[r["queue"]]
        s.completed, s.failed, s.cancelled = (
            int(r["completed"]),
            int(r["failed"]),
            int(r["cancelled"]),
        )
        s.throughput = float(r["finished_recently"]) * 60 / THROUGHPUT_WINDOW_S
    async with redis.pipeline(transaction=False) as pipe:
        for q in snap.queues:
            pipe.zcount(queue_key(q), "-inf", now)
            pipe.zcount(queue_key(q), f"({now}", "+inf")
        zcounts = await pipe.execute()
    for i, (q, s) in enumerate(snap.queues.items()):
        ready, delayed = int(zcounts[2 * i]), int(zcounts[2 * i + 1])
        s.active = running.get(q, 0)
        # arq keeps a running job in the queue's sorted set until it finishes.
        s.waiting = max(ready - s.active, 0)
        s.delayed = delayed
        s.workers = sum(1 for w in workers if q in w["queues"])
    snap.workers = workers
    snap.recorder_lag = await recorder_lag(redis)
    snap.alert_rows = [dict(r) for r in alert_rows]
    return snap


def queue_stats_payload(
    queue: str, s: QueueSnapshot, ts: int, window_s: int = DEFAULT_WINDOW_S
) -> dict[str, Any]:
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
        "windowS": window_s,
    }


def _share(worker: dict[str, Any], visible: frozenset[str]) -> dict[str, Any]:
    active = worker.get("queue_active") or {}
    concurrency = worker.get("queue_concurrency") or {}
    return {
        **worker,
        "active": sum(n for q, n in active.items() if q in visible),
        "concurrency": sum(n for q, n in concurrency.items() if q in visible),
    }


def system_stats_payload(snap: Snapshot, visible: frozenset[str] | None) -> dict[str, Any]:
    """System totals over the queues one token may see (None = every queue)."""
    queues = {q: s for q, s in snap.queues.items() if visible is None or q in visible}
    workers = [w for w in snap.workers if visible is None or any(q in visible for q in w["queues"])]
    if visible is not None:
        # A scoped client sees the share of each worker that serves its queues, not the
        # jobs a shared worker runs for queues outside its token.
        workers = [_share(w, visible) for w in workers]
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
        "windowS": snap.window_s,
    }
