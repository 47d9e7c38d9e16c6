"""Analytics endpoints under ``/api/v1/jobs/analytics/``: answered from the rollups.

Each handler resolves the request's window (``analytics_range``) and queue scope (the
requested queues cut down to the token's), then serves the answer from the short-lived
Redis cache (``analytics_cache``) or builds it (``analytics_trends``,
``analytics_performance``, ``analytics_failures``, ``analytics_usage``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from jobdeck.events import now_ms
from jobdeck.lag import read_recorder_lag
from jobdeck.web import PG, REDIS
from pydantic import BaseModel
from redis.exceptions import RedisError

from jobdeck_api import analytics_usage
from jobdeck_api.analytics_cache import TTL_S, cache_key, cached
from jobdeck_api.analytics_failures import failures as failure_report
from jobdeck_api.analytics_models import (
    AnalyticsQuery,
    FailureReport,
    Freshness,
    PerformanceReport,
    SuccessTrends,
)
from jobdeck_api.analytics_performance import performance as performance_report
from jobdeck_api.analytics_range import RangeError, resolve
from jobdeck_api.analytics_scope import Scope
from jobdeck_api.analytics_trends import success_trends as trends_report
from jobdeck_api.analytics_usage import ResourceUsage
from jobdeck_api.errors import BadParameter
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.state import THRESHOLDS

routes = ApiRoutes()
TAG = ["analytics"]
BASE = "/api/v1/jobs/analytics"
COMMON = (
    " Parameters: `startDate`/`endDate` (default the last 24 h), `interval` (15min, hour, "
    "day; default from the range), `queues[]`, `jobName`. The range is widened to whole "
    "buckets (`range` says which); figures cover only the queues of the caller's token; "
    f"answers are cached for {TTL_S:g} s (`freshness`)."
)

M = TypeVar("M", bound=BaseModel)


def scope_of(call: ApiRequest[AnalyticsQuery, None]) -> Scope:
    q = call.query
    try:
        window = resolve(q.start_date, q.end_date, q.interval, datetime.now(UTC))
    except RangeError as exc:
        raise BadParameter(
            str(exc), [{"in": "query", "name": exc.parameter, "reason": exc.reason}]
        ) from exc
    visible = call.principal.queues
    queues: list[str] | None = None
    if q.queues:
        queues = sorted(set(q.queues) if visible is None else set(q.queues) & visible)
    elif visible is not None:
        queues = sorted(visible)
    return Scope(window, queues, q.job_name)


async def freshness(call: ApiRequest[Any, Any]) -> Freshness:
    behind = None
    try:
        lag = await read_recorder_lag(call.app[REDIS])
        behind = lag.behind if lag is not None else None
    except (RedisError, OSError):
        pass
    return Freshness(generated_at=datetime.now(UTC), cache_ttl_s=TTL_S, recorder_behind=behind)


def _mark(model: Any, cached: bool) -> None:
    model.freshness.cached = cached


async def _serve(
    call: ApiRequest[AnalyticsQuery, None],
    endpoint: str,
    build: Callable[[Scope, Freshness], Awaitable[M]],
) -> M | web.Response:
    scope = scope_of(call)
    w = scope.window
    key = cache_key(
        endpoint,
        scope.queues,
        {"start": w.start, "end": w.end, "interval": w.interval, "name": scope.job_name},
    )

    async def fresh() -> M:
        return await build(scope, await freshness(call))

    return await cached(call.app[REDIS], key, fresh, _mark)


@routes.route(
    "GET",
    f"{BASE}/success-trends",
    tags=TAG,
    query=AnalyticsQuery,
    response=SuccessTrends,
    errors=(422,),
)
async def success_trends(call: ApiRequest[AnalyticsQuery, None]) -> SuccessTrends | web.Response:
    """Success trends

    Per bucket, per queue and overall: finished, completed, failed, cancelled and the
    success rate (completed / (completed + failed)), with a `trend` (improving, stable,
    declining or insufficient_data) whose method is described in `method`.
    """
    pg = call.app[PG]
    return await _serve(call, "success-trends", lambda s, f: trends_report(pg, s, f))


@routes.route(
    "GET",
    f"{BASE}/performance",
    tags=TAG,
    query=AnalyticsQuery,
    response=PerformanceReport,
    errors=(422,),
)
async def performance(call: ApiRequest[AnalyticsQuery, None]) -> PerformanceReport | web.Response:
    """Performance

    Per queue, per job name and overall: throughput (jobs/hour), processing time avg, min,
    max, p50, p95, p99, wait time (due to start) avg and p95, failure and retry rates, and
    per queue the live waiting / active / delayed counts the gateway's `queueStats` sends.
    """
    pg, redis = call.app[PG], call.app[REDIS]
    return await _serve(
        call,
        "performance",
        lambda s, f: performance_report(pg, redis, s, f, now_ms()),
    )


@routes.route(
    "GET",
    f"{BASE}/failures",
    tags=TAG,
    query=AnalyticsQuery,
    response=FailureReport,
    errors=(422,),
)
async def failures(call: ApiRequest[AnalyticsQuery, None]) -> FailureReport | web.Response:
    """Failure analysis

    Failure counts by queue and job name, the top failure reasons grouped by fingerprint
    (error type + message with numbers, ids, paths and quoted values normalised away; each
    usable as `fingerprint` in bulk retry/cancel), the failure trend per bucket, the job
    names failing most, and recommendations, each with the numbers that triggered it.
    """
    pg, redis = call.app[PG], call.app[REDIS]
    return await _serve(
        call,
        "failures",
        lambda s, f: failure_report(pg, redis, s, f, now_ms()),
    )


@routes.route(
    "GET",
    f"{BASE}/resource-usage",
    tags=TAG,
    query=AnalyticsQuery,
    response=ResourceUsage,
    errors=(422,),
)
async def resource_usage(call: ApiRequest[AnalyticsQuery, None]) -> ResourceUsage | web.Response:
    """Resource usage

    CPU % and memory of every service process (sampled by the processes themselves, a short
    series each), Redis (memory vs maxmemory, ops/s, clients, event stream length, recorder
    lag), Postgres (database and largest relations, connections vs max, cache hit ratio,
    rows), per queue worker-seconds in the range, jobs running per worker and Redis memory,
    and the resource alerts with their thresholds (`JOBDECK_ALERT_*`). The system-wide
    sections are for tokens that see every queue.
    """
    pg, redis = call.app[PG], call.app[REDIS]
    thresholds = call.app[THRESHOLDS]
    return await _serve(
        call,
        "resource-usage",
        lambda s, f: analytics_usage.resource_usage(pg, redis, s, f, now_ms(), thresholds),
    )


for _ep in routes.endpoints:
    _ep.description += COMMON
