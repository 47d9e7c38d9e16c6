"""Resource sampling and resource rules without I/O."""

from __future__ import annotations

import time

from jobdeck.usage import (
    PostgresUsage,
    ProcessUsage,
    RedisUsage,
    ResourceThresholds,
    Sample,
    UsageSampler,
    cpu_percent,
    resource_checks,
    rss_bytes,
)


def test_cpu_percent_is_cpu_time_over_wall_time() -> None:
    assert cpu_percent(10.0, 1.0, 12.0, 2.0) == 50.0
    assert cpu_percent(10.0, 1.0, 11.0, 3.0) == 200.0  # two cores busy
    assert cpu_percent(10.0, 1.0, 10.0, 2.0) == 0.0  # no time elapsed
    assert cpu_percent(10.0, 2.0, 11.0, 1.0) == 0.0


def test_a_sampler_measures_this_process() -> None:
    sampler = UsageSampler(None, "test", "t-1")  # type: ignore[arg-type]
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn some CPU between two samples
        pass
    sample = sampler.measure()
    assert sample.cpu_pct > 0
    assert sample.rss_bytes > 10 * 2**20 and abs(sample.rss_bytes - rss_bytes()) < 2**26


def test_thresholds_from_config_and_env() -> None:
    t = ResourceThresholds.from_env({"JOBDECK_ALERT_PROCESS_RSS_MB": "256"})
    assert t.process_rss_mb == 256.0 and t.process_cpu_pct == ResourceThresholds().process_cpu_pct


def test_resource_checks_fire_over_their_thresholds_only() -> None:
    t = ResourceThresholds(
        process_cpu_pct=80, process_rss_mb=100, redis_memory_pct=50, pg_connections_pct=50
    )
    hot = ProcessUsage(
        "api", "api-1", [Sample(i, 95.0, 200 * 2**20) for i in range(13)] + [Sample(14, 5.0, 2**20)]
    )
    calm = ProcessUsage("recorder", "recorder-1", [Sample(i, 5.0, 50 * 2**20) for i in range(3)])
    starting = ProcessUsage("gateway", "gateway-1", [Sample(1, 100.0, 50 * 2**20)])
    redis = RedisUsage(used_memory=600, maxmemory=1000, ops_per_s=1, clients=2, stream_length=3)
    unlimited = RedisUsage(used_memory=600, maxmemory=0, ops_per_s=1, clients=2, stream_length=3)
    pg = PostgresUsage(
        1, connections=20, max_connections=100, cache_hit_ratio=0.99, relations=[], rows={}
    )
    checks = {(c.kind, c.subject): c for c in resource_checks([hot, calm, starting], redis, pg, t)}
    assert checks[("process_cpu", "api:api-1")].breached  # sustained over the last 12 samples
    assert checks[("process_cpu", "api:api-1")].value == 87.5
    assert checks[("process_rss", "api:api-1")].value == 1.0  # memory: the latest sample
    assert ("process_cpu", "gateway:gateway-1") not in checks  # one sample is no trend
    assert not checks[("process_cpu", "recorder:recorder-1")].breached
    assert (
        checks[("redis_memory", "redis")].breached
        and checks[("redis_memory", "redis")].value == 60.0
    )
    assert not checks[("pg_connections", "postgres")].breached
    assert all(c.kind != "redis_memory" for c in resource_checks([], unlimited, None, t))
