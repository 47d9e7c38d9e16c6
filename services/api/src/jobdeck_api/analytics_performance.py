"""``GET .../analytics/performance``: throughput, processing and wait times, failure and
retry rates per queue, per job name and overall, with the queues' live counts."""

from __future__ import annotations

import asyncio

import asyncpg
from jobdeck.histogram import RELATIVE_ERROR, merge, percentile
from redis.asyncio import Redis

from jobdeck_api.analytics_live import live_queue_counts, live_sources
from jobdeck_api.analytics_models import (
    DurationStats,
    Freshness,
    LiveCounts,
    Performance,
    PerformanceReport,
    WaitStats,
)
from jobdeck_api.analytics_scope import Scope, counts, coverage, rate
from jobdeck_api.analytics_totals import Group, grouped_totals


def performance_of(g: Group, hours: float, queue: str | None, name: str | None) -> Performance:
    c = counts(g.by_status)
    hist = merge(g.duration_hist)
    waits = merge(g.wait_hist)
    lo, hi = g.duration_min, g.duration_max
    return Performance(
        **c.model_dump(),
        queue=queue,
        name=name,
        throughput_per_hour=round(c.finished / hours, 3) if hours else 0.0,
        duration_ms=DurationStats(
            avg=round(g.duration_sum / g.timed, 1) if g.timed else None,
            min=lo,
            max=hi,
            p50=percentile(hist, 0.5, lo, hi),
            p95=percentile(hist, 0.95, lo, hi),
            p99=percentile(hist, 0.99, lo, hi),
        ),
        wait_ms=WaitStats(
            avg=round(g.wait_sum / g.waited, 1) if g.waited else None,
            p95=percentile(waits, 0.95, 0),
        ),
        failure_rate=rate(c.failed, c.completed + c.failed),
        retry_rate=rate(g.retried, c.finished),
    )


async def performance(
    pg: asyncpg.Pool, redis: Redis, scope: Scope, freshness: Freshness, now_ms: int
) -> PerformanceReport:
    totals, sources = await asyncio.gather(
        grouped_totals(pg, scope, histograms=True), live_sources(redis, pg, now_ms)
    )
    hours = scope.window.hours
    live = await live_queue_counts(redis, sources, scope, totals.queues(), now_ms)
    overall = performance_of(totals.groups[(None, None)], hours, None, None)
    overall.live = LiveCounts(
        waiting=sum(c.waiting for c in live.values()),
        active=sum(c.active for c in live.values()),
        delayed=sum(c.delayed for c in live.values()),
        workers=sum(c.workers for c in live.values()),
    )
    per_queue = []
    for q in sorted(set(totals.queues()) | set(live)):
        perf = performance_of(totals.groups[(q, None)], hours, q, None)
        perf.live = live.get(q, LiveCounts())
        per_queue.append(perf)
    return PerformanceReport(
        range=coverage(scope.window),
        freshness=freshness,
        percentile_error=round(RELATIVE_ERROR, 4),
        overall=overall,
        queues=per_queue,
        job_names=[performance_of(totals.groups[k], hours, *k) for k in totals.names()],
    )
