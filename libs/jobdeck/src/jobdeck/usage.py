"""Resource usage: each process samples its own CPU and memory into Redis; readers and
thresholds shared by the analytics API (which shows them) and the gateway (which alerts).

Every service process runs a ``UsageSampler`` (aiohttp services through
``use_usage_sampler`` in their ``cleanup_ctx``, as a loop of the app's ``Supervisor``;
workers from their HTTP side, which starts with them). Each ``interval_s`` it appends one
sample — CPU % since the previous sample (``time.process_time`` over wall time: 100 % is one
core) and resident memory — to a short Redis list ``jobdeck:usage:<service>:<instance>``
(the last ``SAMPLES_KEPT``, with a TTL, so a dead process's series disappears) and marks
the process in the index sorted set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import asyncpg
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck.settings import parse_float
from jobdeck.streams import EVENTS
from jobdeck.supervise import supervise
from jobdeck.web import REDIS, SETTINGS

log = logging.getLogger(__name__)

PREFIX = "jobdeck:usage:"
INDEX = "jobdeck:usage:index"
SAMPLES_KEPT = 120
DEFAULT_INTERVAL_S = 5.0
USAGE_LOOP = "usage-sampler"


@dataclass(frozen=True, slots=True)
class Sample:
    ts: int  # epoch ms
    cpu_pct: float
    rss_bytes: int


def cpu_percent(wall_before: float, cpu_before: float, wall_now: float, cpu_now: float) -> float:
    """CPU time used over wall time elapsed, in percent of one core."""
    elapsed = wall_now - wall_before
    if elapsed <= 0:
        return 0.0
    return round(max(cpu_now - cpu_before, 0.0) / elapsed * 100, 1)


def rss_bytes() -> int:
    """Resident memory now (Linux ``/proc``); elsewhere the peak, which is what is known."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def series_key(service: str, instance: str) -> str:
    return f"{PREFIX}{service}:{instance}"


class UsageSampler:
    """Samples this process into Redis every ``interval_s`` until stopped."""

    def __init__(
        self, redis: Redis, service: str, instance: str, interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        self.redis = redis
        self.service = service
        self.instance = instance
        self.interval_s = interval_s
        self._last = (time.monotonic(), time.process_time())

    def measure(self) -> Sample:
        wall, cpu = time.monotonic(), time.process_time()
        pct = cpu_percent(*self._last, wall, cpu)
        self._last = (wall, cpu)
        return Sample(int(time.time() * 1000), pct, rss_bytes())

    async def sample_once(self) -> Sample:
        sample = self.measure()
        key = series_key(self.service, self.instance)
        ttl_ms = int(max(self.interval_s * SAMPLES_KEPT, 60) * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps(asdict(sample)))
            pipe.ltrim(key, -SAMPLES_KEPT, -1)
            pipe.pexpire(key, ttl_ms)
            pipe.zadd(INDEX, {f"{self.service}:{self.instance}": sample.ts})
            pipe.zremrangebyscore(INDEX, "-inf", sample.ts - ttl_ms)
            await pipe.execute()
        return sample

    async def run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except (RedisError, OSError) as exc:  # Redis away: the next tick tries again
                log.debug("usage sample not stored", extra={"error": repr(exc)})
            await asyncio.sleep(self.interval_s)


def use_usage_sampler(app: web.Application, service: str, redis: Redis | None = None) -> None:
    """Sample this process while ``app`` runs (the app's Redis client unless one is given),
    every ``Settings.usage_interval_ms``, as the supervised loop ``usage-sampler``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        client = redis if redis is not None else app[REDIS]
        settings = app[SETTINGS]
        interval_s = settings.usage_interval_ms / 1000
        sampler = UsageSampler(client, service, settings.instance, interval_s)
        supervisor = supervise(app)
        supervisor.start(USAGE_LOOP, sampler.run)
        yield
        await supervisor.stop(names=[USAGE_LOOP])

    app.cleanup_ctx.append(ctx)


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    service: str
    instance: str
    samples: list[Sample]

    @property
    def latest(self) -> Sample:
        return self.samples[-1]


async def read_processes(redis: Redis, now_ms: int, max_age_ms: int = 60_000) -> list[ProcessUsage]:
    """Every process that sampled itself within ``max_age_ms``, with its series."""
    members = await redis.zrangebyscore(INDEX, now_ms - max_age_ms, "+inf")
    names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
    if not names:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.lrange(PREFIX + name, 0, -1)
        series = await pipe.execute()
    found = []
    for name, raw in zip(names, series, strict=True):
        service, _, instance = name.partition(":")
        samples = []
        for item in raw:
            try:
                samples.append(Sample(**json.loads(item)))
            except (ValueError, TypeError):
                continue
        if samples:
            found.append(ProcessUsage(service, instance, samples))
    return sorted(found, key=lambda p: (p.service, p.instance))


# -- Redis and Postgres, read live ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisUsage:
    used_memory: int
    maxmemory: int  # 0: no limit
    ops_per_s: int
    clients: int
    stream_length: int
    queue_memory: dict[str, int] = field(default_factory=dict)

    @property
    def memory_ratio(self) -> float | None:
        return self.used_memory / self.maxmemory if self.maxmemory else None


async def read_redis(redis: Redis, queue_keys: Mapping[str, str]) -> RedisUsage:
    """INFO figures, the event stream's length and the memory of each queue's key."""
    info = await redis.info()
    length = await redis.xlen(EVENTS)
    memory: dict[str, int] = {}
    for queue, key in queue_keys.items():
        used = await redis.memory_usage(key)
        memory[queue] = int(used or 0)
    return RedisUsage(
        used_memory=int(info.get("used_memory", 0)),
        maxmemory=int(info.get("maxmemory", 0)),
        ops_per_s=int(info.get("instantaneous_ops_per_sec", 0)),
        clients=int(info.get("connected_clients", 0)),
        stream_length=int(length),
        queue_memory=memory,
    )


@dataclass(frozen=True, slots=True)
class PostgresUsage:
    database_bytes: int
    connections: int
    max_connections: int
    cache_hit_ratio: float | None
    relations: list[dict[str, Any]]  # largest tables and indexes: name, kind, bytes
    rows: dict[str, int]  # planner estimates (exact counts would read whole tables)

    @property
    def connection_ratio(self) -> float:
        return self.connections / self.max_connections if self.max_connections else 0.0


_PG_USAGE = """
SELECT pg_database_size(current_database()) AS database_bytes,
       (SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL) AS connections,
       current_setting('max_connections')::int AS max_connections,
       (SELECT sum(blks_hit)::float8 / nullif(sum(blks_hit) + sum(blks_read), 0)
          FROM pg_stat_database WHERE datname = current_database()) AS cache_hit_ratio
"""
_PG_RELATIONS = """
SELECT c.relname AS name, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_total_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')
ORDER BY pg_total_relation_size(c.oid) DESC
LIMIT $1
"""
# A partitioned table's rows are its partitions' (job_logs: migration 0014).
_PG_ROWS = """
SELECT t.relname, coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint AS n
FROM pg_class t
LEFT JOIN pg_inherits i ON i.inhparent = t.oid
JOIN pg_class c ON c.oid = coalesce(i.inhrelid, t.oid)
WHERE t.relname IN ('jobs', 'job_logs') AND t.relkind IN ('r', 'p')
GROUP BY t.relname
"""


async def read_postgres(pg: asyncpg.Pool, largest: int = 8) -> PostgresUsage:
    row = await pg.fetchrow(_PG_USAGE)
    assert row is not None
    relations = [dict(r) for r in await pg.fetch(_PG_RELATIONS, largest)] if largest else []
    rows = {r["relname"]: int(r["n"]) for r in await pg.fetch(_PG_ROWS)}
    return PostgresUsage(
        database_bytes=int(row["database_bytes"]),
        connections=int(row["connections"]),
        max_connections=int(row["max_connections"]),
        cache_hit_ratio=None if row["cache_hit_ratio"] is None else float(row["cache_hit_ratio"]),
        relations=relations,
        rows=rows,
    )


# -- thresholds ------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceThresholds:
    """Resource alert thresholds; each overridable by ``JOBDECK_ALERT_<FIELD>``."""

    process_cpu_pct: float = 90.0  # of one core, sustained (see ``sustained_cpu``)
    process_rss_mb: float = 1024.0
    redis_memory_pct: float = 80.0  # of maxmemory (no alert when Redis has no limit)
    pg_connections_pct: float = 80.0  # of max_connections

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ResourceThresholds:
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for f in fields(cls):
            name = f"JOBDECK_ALERT_{f.name.upper()}"
            raw = env.get(name)
            if raw is not None:
                values[f.name] = parse_float(name, raw, 0.0, 1e9)
        return replace(cls(), **values)


@dataclass(frozen=True, slots=True)
class ResourceBreach:
    """One resource measured against its threshold (``breached``: over it now)."""

    kind: str  # process_cpu, process_rss, redis_memory, pg_connections
    subject: str  # the process (service:instance), or redis / postgres
    value: float
    threshold: float
    breached: bool


CPU_WINDOW = 12  # samples: a minute at the default interval
CPU_MIN_SAMPLES = 3


def sustained_cpu(samples: list[Sample]) -> float | None:
    """Mean CPU % over the last ``CPU_WINDOW`` samples; None with fewer than
    ``CPU_MIN_SAMPLES`` (a process busy for one sample, a start-up, is no alert)."""
    recent = samples[-CPU_WINDOW:]
    if len(recent) < CPU_MIN_SAMPLES:
        return None
    return round(sum(s.cpu_pct for s in recent) / len(recent), 1)


def resource_checks(
    processes: list[ProcessUsage],
    redis: RedisUsage | None,
    postgres: PostgresUsage | None,
    t: ResourceThresholds,
) -> list[ResourceBreach]:
    """Every resource rule measured (pure): what the gateway alerts on and the API shows."""

    def check(kind: str, subject: str, value: float, threshold: float) -> ResourceBreach:
        return ResourceBreach(kind, subject, value, threshold, value > threshold)

    found = []
    for p in processes:
        subject = f"{p.service}:{p.instance}"
        cpu = sustained_cpu(p.samples)
        if cpu is not None:
            found.append(check("process_cpu", subject, cpu, t.process_cpu_pct))
        rss_mb = round(p.latest.rss_bytes / 2**20, 1)
        found.append(check("process_rss", subject, rss_mb, t.process_rss_mb))
    if redis is not None and redis.memory_ratio is not None:
        pct = round(100 * redis.memory_ratio, 1)
        found.append(check("redis_memory", "redis", pct, t.redis_memory_pct))
    if postgres is not None:
        pct = round(100 * postgres.connection_ratio, 1)
        found.append(check("pg_connections", "postgres", pct, t.pg_connections_pct))
    return found
