"""``GET .../analytics/resource-usage``: processes, Redis, Postgres, queues, resource alerts.

Process figures are the samples each service process keeps in Redis (``jobdeck.usage``);
Redis and Postgres are read live; per-queue worker-seconds come from the rollups (the sum
of the durations of the jobs finished in the window). The system-wide sections describe
shared machinery, not queues, so only a token that sees every queue gets them; a token
limited to some queues gets the figures of those queues.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
from jobdeck.lag import RecorderLag, read_recorder_lag
from jobdeck.queues import queue_key
from jobdeck.usage import (
    PostgresUsage,
    ProcessUsage,
    ResourceThresholds,
    read_postgres,
    read_processes,
    read_redis,
    resource_checks,
)
from pydantic import Field
from redis.asyncio import Redis

from jobdeck_api.analytics_live import live_queue_counts, live_sources
from jobdeck_api.analytics_models import Coverage, Freshness
from jobdeck_api.analytics_scope import Scope, coverage
from jobdeck_api.analytics_totals import grouped_totals
from jobdeck_api.models import Model


class UsagePoint(Model):
    ts: datetime
    cpu_pct: float = Field(description="CPU time over wall time since the previous sample")
    rss_bytes: int


class ProcessInfo(Model):
    service: str
    instance: str
    latest: UsagePoint
    series: list[UsagePoint] = Field(description="oldest first, one sample per interval")


class RedisInfo(Model):
    used_memory: int
    maxmemory: int = Field(description="0: no limit")
    memory_pct: float | None
    ops_per_s: int
    clients: int
    stream_length: int
    recorder_behind: int | None = Field(description="events not yet recorded in Postgres")
    recorder_pending: int | None = Field(description="delivered to a recorder, not yet acked")


class Relation(Model):
    name: str
    kind: str
    bytes: int


class PostgresInfo(Model):
    database_bytes: int
    connections: int
    max_connections: int
    cache_hit_ratio: float | None
    largest: list[Relation]
    rows: dict[str, int] = Field(description="planner estimates, not exact counts")


class QueueUsage(Model):
    queue: str
    worker_seconds: float = Field(description="sum of job durations finished in the range")
    active: int
    workers: int
    jobs_per_worker: float | None
    redis_bytes: int = Field(description="memory held by the queue's key in Redis")


class ResourceAlert(Model):
    kind: str
    subject: str
    value: float
    threshold: float
    breached: bool


class ResourceUsage(Model):
    range: Coverage
    freshness: Freshness
    processes: list[ProcessInfo] | None = Field(description="null for a token limited to queues")
    redis: RedisInfo | None
    postgres: PostgresInfo | None
    queues: list[QueueUsage]
    alerts: list[ResourceAlert] = Field(
        description="every resource rule measured now; breached ones are also raised once per "
        "crossing as the gateway's `alert` event"
    )
    thresholds: dict[str, float]


def _point(ts: int, cpu: float, rss: int) -> UsagePoint:
    return UsagePoint(ts=datetime.fromtimestamp(ts / 1000, UTC), cpu_pct=cpu, rss_bytes=rss)


SystemUsage = tuple[list[ProcessUsage], PostgresUsage | None, RecorderLag | None]


async def _system_usage(pg: asyncpg.Pool, redis: Redis, now_ms: int) -> SystemUsage:
    """The sections about shared machinery (tokens that see every queue), read at once."""
    processes, pg_usage, lag = await asyncio.gather(
        read_processes(redis, now_ms), read_postgres(pg), read_recorder_lag(redis)
    )
    return processes, pg_usage, lag


async def _no_system_usage() -> SystemUsage:
    return [], None, None


async def resource_usage(
    pg: asyncpg.Pool,
    redis: Redis,
    scope: Scope,
    freshness: Freshness,
    now_ms: int,
    thresholds: ResourceThresholds,
) -> ResourceUsage:
    system = scope.queues is None
    totals, sources, (processes, pg_usage, lag) = await asyncio.gather(
        grouped_totals(pg, scope),
        live_sources(redis, pg, now_ms),
        _system_usage(pg, redis, now_ms) if system else _no_system_usage(),
    )
    live = await live_queue_counts(redis, sources, scope, totals.queues(), now_ms)
    queues = sorted(live)
    redis_usage = await read_redis(redis, {q: queue_key(q) for q in queues})
    per_queue = []
    for q in queues:
        group = totals.groups.get((q, None))
        counts = live.get(q)
        active, workers = (counts.active, counts.workers) if counts else (0, 0)
        per_queue.append(
            QueueUsage(
                queue=q,
                worker_seconds=round((group.duration_sum if group else 0) / 1000, 3),
                active=active,
                workers=workers,
                jobs_per_worker=round(active / workers, 2) if workers else None,
                redis_bytes=redis_usage.queue_memory.get(q, 0),
            )
        )
    checks = resource_checks(processes, redis_usage if system else None, pg_usage, thresholds)
    return ResourceUsage(
        range=coverage(scope.window),
        freshness=freshness,
        processes=[
            ProcessInfo(
                service=p.service,
                instance=p.instance,
                latest=_point(p.latest.ts, p.latest.cpu_pct, p.latest.rss_bytes),
                series=[_point(s.ts, s.cpu_pct, s.rss_bytes) for s in p.samples],
            )
            for p in processes
        ]
        if system
        else None,
        redis=RedisInfo(
            used_memory=redis_usage.used_memory,
            maxmemory=redis_usage.maxmemory,
            memory_pct=None
            if redis_usage.memory_ratio is None
            else round(100 * redis_usage.memory_ratio, 2),
            ops_per_s=redis_usage.ops_per_s,
            clients=redis_usage.clients,
            stream_length=redis_usage.stream_length,
            recorder_behind=lag.behind if lag else None,
            recorder_pending=lag.pending if lag else None,
        )
        if system
        else None,
        postgres=PostgresInfo(
            database_bytes=pg_usage.database_bytes,
            connections=pg_usage.connections,
            max_connections=pg_usage.max_connections,
            cache_hit_ratio=pg_usage.cache_hit_ratio,
            largest=[Relation(**r) for r in pg_usage.relations],
            rows=pg_usage.rows,
        )
        if pg_usage is not None
        else None,
        queues=per_queue,
        alerts=[
            ResourceAlert(
                kind=c.kind,
                subject=c.subject,
                value=c.value,
                threshold=c.threshold,
                breached=c.breached,
            )
            for c in checks
        ],
        thresholds={
            "processCpuPct": thresholds.process_cpu_pct,
            "processRssMb": thresholds.process_rss_mb,
            "redisMemoryPct": thresholds.redis_memory_pct,
            "pgConnectionsPct": thresholds.pg_connections_pct,
        },
    )
