"""The live counts of the queues in an analytics request's scope.

The very numbers of the gateway's ``queueStats`` (``jobdeck.depth``): one definition of
waiting, active, delayed and workers for the whole product.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg
from jobdeck.depth import live_workers, queue_depths, workers_per_queue
from jobdeck.sql import SHARED
from redis.asyncio import Redis

from jobdeck_api.analytics_models import LiveCounts
from jobdeck_api.analytics_scope import Scope


async def live_queue_counts(
    redis: Redis, pg: asyncpg.Pool, scope: Scope, seen: Iterable[str], now_ms: int
) -> dict[str, LiveCounts]:
    """The gateway's ``queueStats`` numbers (``jobdeck.depth``) for the queues in scope: the
    requested ones, else those with figures, recorded jobs or live workers."""
    known, workers, recorded = await asyncio.gather(
        pg.fetch(SHARED["known_queues"]),
        live_workers(redis, now_ms),
        pg.fetch(SHARED["active_counts"]),
    )
    if scope.queues is not None:
        names = set(scope.queues)
    else:
        names = set(seen) | {r["queue"] for r in known}
        for w in workers:
            names.update(w.queues)
    if not names:
        return {}
    running = {r["queue"]: int(r["n"]) for r in recorded}
    depths = await queue_depths(redis, sorted(names), now_ms, workers, running)
    serving = workers_per_queue(workers)
    return {
        q: LiveCounts(
            waiting=d.waiting, active=d.active, delayed=d.delayed, workers=serving.get(q, 0)
        )
        for q, d in depths.items()
    }
