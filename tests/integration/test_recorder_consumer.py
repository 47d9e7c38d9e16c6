"""The recorder against real Redis and Postgres: rows, idempotence, bad input, claims, outages."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import msgpack
from jobdeck.events import Event, EventType, now_ms
from jobdeck.lag import read_recorder_lag
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.streams import DEAD_LETTERS, EVENTS, EventStream
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.consumer import Recorder
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.processes import wait_for

FAST = RecorderConfig(
    batch_size=500,
    block_ms=100,
    claim_idle_ms=300,
    claim_interval_ms=200,
    backoff_min_ms=50,
    backoff_max_ms=200,
    lag_interval_ms=100,
)


def job_events(job_id: str, attempt: int = 1, logs: int = 2, t0: int | None = None) -> list[Event]:
    """A run of one attempt after its ``added``: started, progress, logs, completed."""
    t = t0 or now_ms()
    common: dict[str, Any] = {"queue": "q", "job_id": job_id, "attempt": attempt, "name": "task"}
    events = [
        Event(
            EventType.STARTED,
            ts=t + 1,
            fields={"started_at": t + 1, "worker": "w1", "max_attempts": 3},
            **common,
        ),
        Event(EventType.PROGRESS, ts=t + 2, fields={"progress": 50, "message": "half"}, **common),
    ]
    events += [
        Event(
            EventType.LOG,
            ts=t + 3 + i,
            fields={"seq": i + 1, "level": "info", "message": f"line {i + 1}"},
            **common,
        )
        for i in range(logs)
    ]
    events.append(
        Event(
            EventType.COMPLETED,
            ts=t + 50,
            fields={
                "started_at": t + 1,
                "finished_at": t + 50,
                "duration_ms": 49,
                "result": {"n": job_id},
            },
            **common,
        )
    )
    return events


@asynccontextmanager
async def running(
    redis: Redis, pool: asyncpg.Pool, config: RecorderConfig = FAST, consumer: str = "r1"
) -> AsyncIterator[Recorder]:
    recorder = Recorder(redis, pool, config, consumer=consumer)
    task = asyncio.create_task(recorder.run())
    try:
        yield recorder
    finally:
        recorder.stop()
        await asyncio.wait_for(task, 10)


async def drained(redis: Redis) -> bool:
    groups = await redis.xinfo_groups(EVENTS)
    group = next((g for g in groups if g["name"] == b"recorder"), None)
    return group is not None and group["lag"] == 0 and group["pending"] == 0


async def wait_drained(redis: Redis) -> None:
    await wait_for(lambda: drained(redis), timeout=30, what="recorder to drain the stream")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_events_become_rows_and_logs(redis: Redis, pg: asyncpg.Pool) -> None:
    queues = QueueClient(redis, 1_000_000)
    stream = EventStream(redis, 1_000_000)
    specs = [JobSpec(queue="q", name="task", data={"i": i}, priority=i % 3) for i in range(20)]
    assert all(await queues.enqueue_many(specs, by="alice"))
    for spec in specs[:15]:
        await stream.publish_many(job_events(spec.job_id))
    await queues.pause("q", by="alice")
    cancel = await queues.cancel(specs[19].job_id, "q", "task", attempt=1, by="bob")
    assert cancel == "cancelled"

    async with running(redis, pg):
        await wait_drained(redis)

    rows = {r["id"]: r for r in await pg.fetch("SELECT * FROM jobs")}
    assert len(rows) == 20
    done = rows[specs[0].job_id]
    assert (done["status"], done["attempts"], done["worker"], done["duration_ms"]) == (
        "completed",
        1,
        "w1",
        49,
    )
    assert (done["result"], done["data"], done["progress"]) == (
        {"n": specs[0].job_id},
        {"i": 0},
        100.0,
    )
    assert done["options"]["backoff_ms"] == 1000
    assert done["created_at"] < done["started_at"] < done["finished_at"]
    waiting = rows[specs[16].job_id]
    assert (waiting["status"], waiting["attempts"], waiting["priority"]) == ("waiting", 0, 1)
    assert (rows[specs[19].job_id]["status"], rows[specs[19].job_id]["cancelled_by"]) == (
        "cancelled",
        "bob",
    )
    logs = await pg.fetch(
        "SELECT seq, level, message FROM job_logs WHERE job_id = $1 ORDER BY seq", specs[0].job_id
    )
    assert [tuple(r) for r in logs] == [(1, "info", "line 1"), (2, "info", "line 2")]
    assert await pg.fetchval("SELECT count(*) FROM job_logs") == 30


async def test_duplicates_and_reordering_never_move_rows_back_or_duplicate_logs(
    redis: Redis, pg: asyncpg.Pool
) -> None:
    rng = random.Random(7)
    stream = EventStream(redis, 1_000_000)
    events: list[Event] = []
    for n in range(60):
        spec = JobSpec(queue="q", name="task", data={"n": n})
        events.append(spec.added_event(now_ms()))
        events += job_events(spec.job_id, logs=3)
    shuffled = events + rng.sample(events, len(events) // 2)
    rng.shuffle(shuffled)
    # small batches spread the duplicates and reorderings over many transactions
    config = replace(FAST, batch_size=37)
    await stream.publish_many(shuffled)
    async with running(redis, pg, config):
        await wait_drained(redis)
        await stream.publish_many(rng.sample(events, 100))  # late redeliveries
        await wait_drained(redis)

    statuses = await pg.fetch("SELECT status, count(*) FROM jobs GROUP BY status")
    assert [tuple(r) for r in statuses] == [("completed", 60)]
    assert await pg.fetchval("SELECT count(*) FROM jobs WHERE data IS NULL OR progress <> 100") == 0
    assert await pg.fetchval("SELECT count(*) FROM job_logs") == 180


async def test_malformed_entries_are_dead_lettered_counted_and_skipped(
    redis: Redis, pg: asyncpg.Pool
) -> None:
    stream = EventStream(redis, 1_000_000)
    before = {
        r: metric("jobdeck_recorder_malformed_total", reason=r)
        for r in ("not_msgpack", "unknown_type", "invalid_event", "invalid_field", "no_payload")
    }
    good = JobSpec(queue="q", name="ok\x00name", data={"s": "nul\x00inside", "f": float("nan")})
    await stream.publish(good.added_event(now_ms()))
    bad: list[dict[bytes, bytes]] = [
        {b"e": b"\xc1 not msgpack"},
        {b"e": msgpack.packb({"v": 1, "type": "exploded", "ts": 1, "queue": "q"})},
        {
            b"e": msgpack.packb(
                {"v": 1, "type": "started", "ts": 1, "queue": "q", "job_id": "x", "attempt": 1}
            )
        },
        {
            b"e": msgpack.packb(
                {
                    "v": 1,
                    "type": "log",
                    "ts": 1,
                    "queue": "q",
                    "job_id": "x",
                    "attempt": 1,
                    "seq": 2**40,
                    "level": "info",
                    "message": "m",
                }
            )
        },
        {
            b"e": msgpack.packb(
                {
                    "v": 1,
                    "type": "started",
                    "ts": "yesterday",
                    "queue": "q",
                    "job_id": "x",
                    "attempt": 1,
                    "started_at": 1,
                    "worker": "w",
                    "max_attempts": 1,
                }
            )
        },
        {b"other": b"field"},
    ]
    for fields in bad:
        await redis.xadd(EVENTS, fields)
    await stream.publish_many(job_events(good.job_id))

    async with running(redis, pg):
        await wait_drained(redis)

    row = await pg.fetchrow("SELECT * FROM jobs WHERE id = $1", good.job_id)
    assert row["status"] == "completed" and row["name"] == "okname"
    assert row["data"] == {"s": "nulinside", "f": None}
    assert await pg.fetchval("SELECT count(*) FROM job_logs") == 2
    dead = await redis.xrange(DEAD_LETTERS)
    assert len(dead) == len(bad)
    assert dead[0][1][b"raw"] == b"\xc1 not msgpack"
    assert all(b"reason" in fields and b"id" in fields for _, fields in dead)
    after = {r: metric("jobdeck_recorder_malformed_total", reason=r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "not_msgpack": 1,
        "unknown_type": 1,
        "invalid_event": 2,
        "invalid_field": 1,
        "no_payload": 1,
    }


async def test_entries_a_dead_consumer_left_pending_are_claimed(
    redis: Redis, pg: asyncpg.Pool
) -> None:
    stream = EventStream(redis, 1_000_000)
    specs = [JobSpec(queue="q", name="task") for _ in range(10)]
    await redis.xgroup_create(EVENTS, "recorder", id="0", mkstream=True)
    for spec in specs:
        await stream.publish_many([spec.added_event(now_ms()), *job_events(spec.job_id)])
    # a recorder that read everything and died before writing or acking
    taken = await redis.xreadgroup("recorder", "dead", {EVENTS: ">"}, count=10_000)
    assert len(taken[0][1]) == 60
    claimed_before = metric("jobdeck_recorder_claimed_total")

    async with running(redis, pg, consumer="alive"):
        await wait_drained(redis)

    assert metric("jobdeck_recorder_claimed_total") - claimed_before == 60
    assert await pg.fetchval("SELECT count(*) FROM jobs WHERE status = 'completed'") == 10
    consumers = await redis.xinfo_consumers(EVENTS, "recorder")
    assert {c["name"]: c["pending"] for c in consumers}[b"dead"] == 0


async def _set_connections(database_url: str, allowed: bool) -> None:
    name = database_url.rsplit("/", 1)[1]
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
    finally:
        await conn.close()


async def test_postgres_outage_loses_nothing(
    redis: Redis, pg: asyncpg.Pool, database_url: str
) -> None:
    stream = EventStream(redis, 1_000_000)
    first = [JobSpec(queue="q", name="task") for _ in range(5)]
    second = [JobSpec(queue="q", name="task") for _ in range(5)]
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
    try:
        async with running(redis, pool) as recorder:
            for spec in first:
                await stream.publish_many([spec.added_event(now_ms()), *job_events(spec.job_id)])
            await wait_drained(redis)

            await _set_connections(database_url, allowed=False)
            for spec in second:
                await stream.publish_many([spec.added_event(now_ms()), *job_events(spec.job_id)])

            async def stalled() -> bool:
                return not recorder.healthy

            await wait_for(stalled, what="recorder to notice the outage")
            groups = await redis.xinfo_groups(EVENTS)
            assert groups[0]["pending"] > 0  # kept, not acked, not lost

            await _set_connections(database_url, allowed=True)
            await wait_drained(redis)
            assert recorder.healthy
    finally:
        await _set_connections(database_url, allowed=True)
        await pool.close()

    assert await pg.fetchval("SELECT count(*) FROM jobs WHERE status = 'completed'") == 10
    assert await pg.fetchval("SELECT count(*) FROM job_logs") == 20


async def test_lag_is_published_for_the_gateway(redis: Redis, pg: asyncpg.Pool) -> None:
    stream = EventStream(redis, 1_000_000)
    await stream.publish_many(job_events("j1"))
    recorder = Recorder(redis, pg, FAST, consumer="r1")
    lag = await recorder.publish_lag()  # no group yet: the whole stream is behind
    assert (lag.lag, lag.pending, lag.behind) == (5, 0, 5)
    async with running(redis, pg) as live:
        await wait_drained(redis)
        published = await live.publish_lag()
    assert (published.lag, published.pending, published.consumers) == (0, 0, 1)
    stored = await read_recorder_lag(redis)
    assert stored is not None and stored.behind == 0
    assert 0 < await redis.ttl("jobdeck:recorder:lag") <= FAST.lag_ttl_s


async def test_stop_finishes_the_batch_in_hand(redis: Redis, pg: asyncpg.Pool) -> None:
    stream = EventStream(redis, 1_000_000)
    specs = [JobSpec(queue="q", name="task") for _ in range(200)]
    await stream.publish_many(
        [e for s in specs for e in (s.added_event(now_ms()), *job_events(s.job_id))]
    )
    async with running(redis, pg, replace(FAST, batch_size=100)) as recorder:
        await wait_for(lambda: _positive(recorder.recorded), what="a first batch")
    groups = await redis.xinfo_groups(EVENTS)
    assert groups[0]["pending"] == 0  # everything read was written and acked
    recorded = await pg.fetchval("SELECT count(*) FROM jobs")
    assert recorded > 0


async def _positive(value: int) -> bool:
    return value > 0
