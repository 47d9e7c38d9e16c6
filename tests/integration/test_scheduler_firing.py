"""The scheduler's tick and outcome passes against real Postgres and Redis, with a clock
the test controls: exactly once, policies, DST, auto-disable with one alert."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from jobdeck.db import create_pool
from jobdeck.events import EventType, decode
from jobdeck.queues import QueueClient, job_key, queue_key
from jobdeck.schedules import CLAIM_TTL_MS, claim_key, scheduled_job, slot_job_id
from jobdeck.streams import EVENT_FIELD, EVENTS
from jobdeck_scheduler.config import SchedulerConfig
from jobdeck_scheduler.firing import Firer
from jobdeck_scheduler.outcomes import publish_alerts, settle
from redis.asyncio import Redis

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def add_schedule(
    pg: asyncpg.Pool,
    cron: str = "* * * * *",
    next_run_at: datetime = T0,
    tz: str = "UTC",
    queue: str = "reports",
    **cols: Any,
) -> str:
    tid = await pg.fetchval(
        "INSERT INTO job_templates (name, queue, task, data) VALUES ($1, $2, 'build', $3)"
        " RETURNING id",
        f"t-{uuid.uuid4().hex}",
        queue,
        {"kind": "daily"},
    )
    names = ["template_id", "name", "cron_expression", "timezone", "next_run_at", *cols]
    values = [tid, f"s-{tid}", cron, tz, next_run_at, *cols.values()]
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    sid: str = await pg.fetchval(
        f"INSERT INTO job_schedules ({', '.join(names)}) VALUES ({marks}) RETURNING id", *values
    )
    return sid


@pytest.fixture
async def queues(redis: Redis) -> QueueClient:
    return QueueClient(redis, 100_000)


def firer(pg: asyncpg.Pool, queues: QueueClient, clock: Clock, name: str = "a") -> Firer:
    return Firer(pg, queues, SchedulerConfig(), f"scheduler-{name}", clock)


async def runs(pg: asyncpg.Pool, sid: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pg.fetch(
        "SELECT * FROM job_schedule_runs WHERE schedule_id = $1 ORDER BY scheduled_at", sid
    )
    return rows


async def test_due_slot_fires_once_with_its_slot_job_id(
    pg: asyncpg.Pool, queues: QueueClient, redis: Redis
) -> None:
    sid = await add_schedule(pg)
    clock = Clock(T0 + timedelta(milliseconds=150))
    f = firer(pg, queues, clock)
    assert (await f.tick()).fired == 1
    assert (await f.tick()).claimed == 0  # advanced: nothing due until 12:01
    (run,) = await runs(pg, sid)
    assert run["outcome"] == "enqueued" and run["trigger"] == "cron"
    assert run["job_id"] == slot_job_id(sid, T0) == f"sched-{sid}-20260501T120000Z"
    assert run["lag_ms"] == 150
    assert await redis.zscore(queue_key("reports"), run["job_id"]) is not None
    s = await pg.fetchrow("SELECT * FROM job_schedules WHERE id = $1", sid)
    assert s["next_run_at"] == T0 + timedelta(minutes=1) and s["runs_fired"] == 1
    assert s["last_job_id"] == run["job_id"]


async def test_slot_enqueued_by_a_replica_that_died_before_commit_is_not_doubled(
    pg: asyncpg.Pool, queues: QueueClient, redis: Redis
) -> None:
    sid = await add_schedule(pg)
    row = await pg.fetchrow(
        "SELECT s.id, s.priority, s.data, t.id AS template_id, t.queue, t.task,"
        " t.data AS template_data, t.priority AS template_priority, t.max_attempts,"
        " t.backoff_ms, t.timeout_s FROM job_schedules s JOIN job_templates t"
        " ON t.id = s.template_id WHERE s.id = $1",
        sid,
    )
    jid = slot_job_id(sid, T0)
    # The dead replica got as far as Redis; its transaction rolled back.
    await queues.enqueue_claimed(scheduled_job(row, jid), claim_key(jid), claim_ttl_ms=CLAIM_TTL_MS)
    # ... and the job even ran and its Redis keys are gone.
    await redis.delete(job_key(jid))
    await redis.zrem(queue_key("reports"), jid)
    await firer(pg, queues, Clock(T0 + timedelta(seconds=1))).tick()
    (run,) = await runs(pg, sid)
    assert run["outcome"] == "enqueued" and run["job_id"] == jid
    assert "earlier attempt" in run["reason"]
    assert await redis.zcard(queue_key("reports")) == 0  # not queued a second time


async def test_concurrent_replicas_fire_each_slot_once(
    database_url: str, pg: asyncpg.Pool, queues: QueueClient, redis: Redis
) -> None:
    ids = [await add_schedule(pg, overlap_policy="allow") for _ in range(60)]
    clock = Clock(T0 + timedelta(seconds=2))
    pools = [await create_pool(database_url, min_size=1, max_size=2) for _ in range(3)]
    try:
        firers = [
            Firer(p, queues, SchedulerConfig(batch_size=7), f"r{i}", clock)
            for i, p in enumerate(pools)
        ]

        async def drain(f: Firer) -> int:
            fired = 0
            while (result := await f.tick()).claimed:
                fired += result.fired
            return fired

        fired = await asyncio.gather(*(drain(f) for f in firers))
    finally:
        for p in pools:
            await p.close()
    assert sum(fired) == 60
    assert await pg.fetchval("SELECT count(*) FROM job_schedule_runs") == 60
    assert await redis.zcard(queue_key("reports")) == 60
    got = {r["schedule_id"] for r in await pg.fetch("SELECT schedule_id FROM job_schedule_runs")}
    assert got == set(ids)


async def test_catch_up_once_after_downtime(pg: asyncpg.Pool, queues: QueueClient) -> None:
    sid = await add_schedule(pg)
    await firer(pg, queues, Clock(T0 + timedelta(minutes=5, seconds=30))).tick()
    missed, fired = await runs(pg, sid)
    assert missed["outcome"] == "missed" and missed["slot_count"] == 5
    assert missed["last_slot_at"] == T0 + timedelta(minutes=4)
    assert fired["outcome"] == "enqueued" and fired["trigger"] == "catch_up"
    assert fired["scheduled_at"] == T0 + timedelta(minutes=5)
    s = await pg.fetchrow("SELECT * FROM job_schedules WHERE id = $1", sid)
    assert (s["runs_missed"], s["runs_fired"]) == (5, 1)


async def test_catch_up_skip_and_all(pg: asyncpg.Pool, queues: QueueClient) -> None:
    skip = await add_schedule(pg, catch_up_policy="skip")
    every = await add_schedule(pg, catch_up_policy="all", overlap_policy="allow")
    await firer(pg, queues, Clock(T0 + timedelta(minutes=2, seconds=30))).tick()
    assert [r["outcome"] for r in await runs(pg, skip)] == ["missed"]
    assert [(r["outcome"], r["trigger"]) for r in await runs(pg, every)] == [
        ("enqueued", "catch_up")
    ] * 3


async def test_overlap_skip_and_queue_one(
    pg: asyncpg.Pool, queues: QueueClient, redis: Redis
) -> None:
    skip = await add_schedule(pg, overlap_policy="skip")
    one = await add_schedule(pg, overlap_policy="queue_one")
    clock = Clock(T0 + timedelta(seconds=1))
    f = firer(pg, queues, clock)
    await f.tick()  # both fire at 12:00; their jobs are not recorded yet: waiting
    clock.now = T0 + timedelta(minutes=1, seconds=1)
    await f.tick()
    assert [r["outcome"] for r in await runs(pg, skip)] == ["enqueued", "skipped_overlap"]
    assert [r["outcome"] for r in await runs(pg, one)] == ["enqueued", "skipped_overlap"]
    # The recorder sees queue_one's first job running: one may wait behind it.
    first = (await runs(pg, one))[0]["job_id"]
    await pg.execute(
        "INSERT INTO jobs (id, queue, name, status, created_at) VALUES ($1, 'reports', 'build',"
        " 'active', now())",
        first,
    )
    clock.now = T0 + timedelta(minutes=2, seconds=1)
    await f.tick()
    assert [r["outcome"] for r in await runs(pg, one)][-1] == "enqueued"
    assert [r["outcome"] for r in await runs(pg, skip)][-1] == "skipped_overlap"
    reason = (await runs(pg, skip))[-1]["reason"]
    assert "still waiting or running" in reason


async def test_dst_fire_through_the_tick(pg: asyncpg.Pool, queues: QueueClient) -> None:
    """``30 2 * * *`` in New York on spring-forward day fires once, at 03:00 EDT."""
    from jobdeck.cron import parse

    cron = parse("30 2 * * *", "America/New_York")
    before = datetime(2026, 3, 7, 12, tzinfo=UTC)
    first = cron.next_after(before)
    assert first == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    sid = await add_schedule(pg, "30 2 * * *", first, "America/New_York")
    await firer(pg, queues, Clock(first + timedelta(milliseconds=20))).tick()
    (run,) = await runs(pg, sid)
    assert run["job_id"].endswith("20260308T070000Z")
    nxt = await pg.fetchval("SELECT next_run_at FROM job_schedules WHERE id = $1", sid)
    assert nxt == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # 02:30 EDT the day after


@pytest.fixture
async def seeded_failures(pg: asyncpg.Pool) -> AsyncIterator[str]:
    sid = await add_schedule(pg, max_consecutive_failures=3)
    for i in range(4):
        jid = f"job-{i}"
        await pg.execute(
            "INSERT INTO job_schedule_runs (schedule_id, scheduled_at, trigger, outcome, job_id)"
            " VALUES ($1, $2, 'cron', 'enqueued', $3)",
            sid,
            T0 + timedelta(minutes=i),
            jid,
        )
        await pg.execute(
            "INSERT INTO jobs (id, queue, name, status, created_at, error_message)"
            " VALUES ($1, 'reports', 'build', $2, now(), 'disk full')",
            jid,
            "completed" if i == 0 else "failed",
        )
    yield sid


async def test_auto_disable_after_n_failures_with_one_alert(
    pg: asyncpg.Pool, redis: Redis, seeded_failures: str
) -> None:
    sid = seeded_failures
    assert await settle(pg, 1000) == 4
    s = await pg.fetchrow("SELECT * FROM job_schedules WHERE id = $1", sid)
    assert s["is_enabled"] is False and s["consecutive_failures"] == 3
    assert "3 consecutive failed runs" in s["disabled_reason"]
    assert "disk full" in s["disabled_reason"] and s["alert_pending"]
    audit = await pg.fetch("SELECT * FROM audit_log WHERE action = 'schedules.auto_disable'")
    assert len(audit) == 1 and audit[0]["targets"] == [sid] and audit[0]["actor"] == "scheduler"
    assert await publish_alerts(pg, redis, 1000) == 1
    # A replica that died before clearing the flag publishes again: still one alert.
    await pg.execute("UPDATE job_schedules SET alert_pending = true WHERE id = $1", sid)
    assert await publish_alerts(pg, redis, 1000) == 0
    alerts = [decode(f[EVENT_FIELD]) for _, f in await redis.xrange(EVENTS)]
    alerts = [e for e in alerts if e.type is EventType.ALERT]
    assert len(alerts) == 1
    a = alerts[0]
    assert a.queue == "reports" and a.fields["kind"] == "schedule_disabled"
    assert a.fields["state"] == "raised" and a.fields["schedule_id"] == sid
    assert await settle(pg, 1000) == 0  # nothing left to fold


async def test_redis_down_retries_within_grace_then_records_failed_to_enqueue(
    pg: asyncpg.Pool,
) -> None:
    sid = await add_schedule(pg, max_consecutive_failures=1)
    dead = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        clock = Clock(T0 + timedelta(seconds=1))
        f = firer(pg, QueueClient(dead, 1000), clock)
        assert (await f.tick()).held == 1
        assert await runs(pg, sid) == []  # not advanced: the next tick tries again
        assert await pg.fetchval("SELECT next_run_at FROM job_schedules WHERE id = $1", sid) == T0
        clock.now = T0 + timedelta(seconds=11)  # past the grace
        assert (await f.tick()).held == 0
    finally:
        await dead.aclose()
    (run,) = await runs(pg, sid)
    assert run["outcome"] == "failed_to_enqueue" and "ConnectionError" in run["reason"]
    s = await pg.fetchrow("SELECT * FROM job_schedules WHERE id = $1", sid)
    assert s["runs_failed_to_enqueue"] == 1 and s["consecutive_failures"] == 1
    # A slot that could not be queued is a failed run: limit 1 disables the schedule.
    assert s["is_enabled"] is False and s["alert_pending"]
    assert "ConnectionError" in s["disabled_reason"]
    audit = await pg.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'schedules.auto_disable'"
    )
    assert audit == 1
