"""The live counts of the queues in an analytics request's scope.

The very numbers of the gateway's ``queueStats`` (``jobdeck.depth``): one definition of
waiting, active, delayed and workers for the whole product.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from jobdeck.depth import LiveWorker, live_workers, queue_depths, workers_per_queue
from jobdeck.sql import SHARED
from redis.asyncio import Redis

from jobdeck_api.analytics_models import LiveCounts
from jobdeck_api.analytics_scope import Scope


@dataclass(frozen=True, slots=True)
class LiveSources:
    """What the live counts are computed from, read while a report reads its rollups."""

    known: list[str]  # queues with recorded jobs
    workers: list[LiveWorker]
    running: dict[str, int]  # recorded active jobs per queue


async def live_sources(redis: Redis, pg: asyncpg.Pool, now_ms: int) -> LiveSources:
    known, workers, recorded = await asyncio.gather(
        pg.fetch(SHARED["known_queues"]),
        live_workers(redis, now_ms),
        pg.fetch(SHARED["active_counts"]),
    )
    return LiveSources(
        known=[r["queue"] for r in known],
        workers=workers,
        running={r["queue"]: int(r["n"]) for r in recorded},
    )


async def live_queue_counts(
    redis: Redis, sources: LiveSources, scope: Scope, seen: Iterable[str], now_ms: int
) -> dict[str, LiveCounts]:
    """The gateway's ``queueStats`` numbers (``jobdeck.depth``) for the queues in scope: the
    requested ones, else those with figures, recorded jobs or live workers."""
    if scope.queues is not None:
        names = set(scope.queues)
    else:
        names = set(seen) | set(sources.known)
        for w in sources.workers:
            names.update(w.queues)
    if not names:
        return {}
    depths = await queue_depths(redis, sorted(names), now_ms, sources.workers, sources.running)
    serving = workers_per_queue(sources.workers)
    return {
        q: LiveCounts(
            waiting=d.waiting, active=d.active, delayed=d.delayed, workers=serving.get(q, 0)
        )
        for q, d in depths.items()
    }
