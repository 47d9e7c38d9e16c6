"""Queue and system statistics: measured from Redis and Postgres, shaped for clients.

One replica — the holder of a short Redis lease — measures each interval, stores the
snapshot in Redis and evaluates the alerts; every replica reads the snapshot and emits
``queueStats`` and ``systemStats`` to its own clients.

Where each number comes from, so that a tick stays cheap on a jobs table of millions of
rows (no query reads the whole table; see ``sql/queries.sql``):

- ``waiting`` / ``delayed`` / ``active``: live, as ``jobdeck.depth`` defines them for the
  REST queue list too (the queue's sorted set in Redis, the worker registry);
- ``completed`` / ``failed``: jobs that completed / failed for good within the last
  ``window_s`` seconds (an hour by default, to the minute), not all-time totals: counting
  those means reading every row ever kept, and the API's job search answers that question.
  They are summed from the recorder's minute and hour rollups, not counted in ``jobs``: at
  1,000 jobs/s an hour is 3.6 M rows, a few hundred rollup rows;
- ``throughput``: jobs finished for good per minute, over the last minute, estimated from
  the minute rollups (``throughput``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
from jobdeck.depth import live_workers, queue_depths, workers_per_queue
from jobdeck.lag import read_recorder_lag
from jobdeck.queues import PAUSED
from jobdeck.sql import SHARED
from jobdeck.streams import EVENTS
from redis.asyncio import Redis

from jobdeck_gateway.queries import QUERIES

RECORDER_GROUP = "recorder"
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


async def _recorded(pg: asyncpg.Pool, window_s: int) -> list[list[asyncpg.Record]]:
    """Known queues, recorded active counts, recent finishes, alert inputs: one snapshot."""
    async with pg.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        # Small index scans: JIT compiling them or starting parallel workers for them (the
        # planner's row estimates for the windowed sums are pessimistic) would cost several
        # times the few milliseconds of work.
        await conn.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
        return [
            await conn.fetch(SHARED["known_queues"]),
            await conn.fetch(SHARED["active_counts"]),
            await conn.fetch(QUERIES["finished_windows"], window_s),
            await conn.fetch(QUERIES["finished_last_minutes"]),
            await conn.fetch(QUERIES["alert_inputs"]),
        ]


def throughput(this_minute: int, last_minute: int, into_minute_s: float) -> float:
    """Jobs finished over the last 60 s, from two minute buckets: all of this minute's, and
    the share of the last minute's that the 60 s still cover (as if spread evenly)."""
    return this_minute + last_minute * max(0.0, 1.0 - into_minute_s / 60)


async def measure(redis: Redis, pg: asyncpg.Pool, window_s: int = DEFAULT_WINDOW_S) -> Snapshot:
    """One snapshot of every known queue (known = recorded, configured, paused or served)."""
    now = int(time.time() * 1000)
    snap = Snapshot(ts=now, window_s=window_s)
    # Redis is read while Postgres answers, so a tick takes the longer of the two, not both.
    (
        (recorded, recorded_active, windows, minutes, alert_rows),
        paused_keys,
        workers,
        lag,
    ) = await asyncio.gather(
        _recorded(pg, window_s),
        redis.hkeys(PAUSED),  # type: ignore[arg-type]
        live_workers(redis, now),
        recorder_lag(redis),
    )
    paused = {k.decode() for k in paused_keys}
    recent = [r for r in windows if r["stats"]]
    names = (
        {r["queue"] for r in recorded}
        | {r["queue"] for r in recent}
        | {r["queue"] for r in alert_rows}
        | paused
    )
    for w in workers:
        names.update(w.queues)
    for q in sorted(names):
        snap.queues[q] = QueueSnapshot(paused=q in paused)
    for r in recent:
        s = snap.queues[r["queue"]]
        s.completed, s.failed, s.cancelled = (
            int(r["completed"]),
            int(r["failed"]),
            int(r["cancelled"]),
        )
    for r in minutes:
        if r["queue"] in snap.queues:
            snap.queues[r["queue"]].throughput = throughput(
                int(r["this_minute"]), int(r["last_minute"]), float(r["into_minute_s"])
            )
    depths = await queue_depths(
        redis, snap.queues, now, workers, {r["queue"]: int(r["n"]) for r in recorded_active}
    )
    serving = workers_per_queue(workers)
    for q, s in snap.queues.items():
        depth = depths[q]
        s.waiting, s.active, s.delayed = depth.waiting, depth.active, depth.delayed
        s.workers = serving.get(q, 0)
    snap.workers = [asdict(w) for w in workers]
    snap.recorder_lag = lag
    alert_windows = {r["queue"]: r for r in windows if not r["stats"]}
    snap.alert_rows = [dict(r) | _alert_window(alert_windows.get(r["queue"])) for r in alert_rows]
    return snap


def _alert_window(r: asyncpg.Record | None) -> dict[str, int]:
    """A configured queue's finished and failed jobs over its own alert window."""
    if r is None:
        return {"finished": 0, "failed": 0}
    return {"finished": int(r["completed"]) + int(r["failed"]), "failed": int(r["failed"])}


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
