"""Two final events of one attempt: the stream's order decides, not the recorders' commits.

Finals of one attempt can both exist (the janitor's ``JobLost`` racing a worker's late
finish, a replayed entry); several recorder replicas commit batches in any order.
"""

from __future__ import annotations

import random
from typing import Any

import asyncpg
from jobdeck.events import Event, EventType, now_ms
from jobdeck.queues import JobSpec
from jobdeck.streams import EventStream
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.store import JobStore
from redis.asyncio import Redis

from tests.integration.test_recorder_consumer import running, wait_drained

SMALL_BATCHES = RecorderConfig(
    batch_size=7,
    block_ms=50,
    claim_idle_ms=300,
    claim_interval_ms=200,
    backoff_min_ms=50,
    backoff_max_ms=200,
    lag_interval_ms=100,
)


def run_events(spec: JobSpec, t: int) -> dict[str, Event]:
    common: dict[str, Any] = {"queue": spec.queue, "job_id": spec.job_id, "attempt": 1}
    common["name"] = spec.name
    ran = {"started_at": t + 1, "finished_at": t + 9, "duration_ms": 8}
    return {
        "added": spec.added_event(t),
        "started": Event(
            EventType.STARTED,
            ts=t + 1,
            fields={"started_at": t + 1, "worker": "w1", "max_attempts": 3},
            **common,
        ),
        "completed": Event(EventType.COMPLETED, ts=t + 9, fields={**ran, "result": 1}, **common),
        "lost": Event(
            EventType.FAILED,
            ts=t + 20,
            fields={**ran, "error_type": "JobLost", "error_message": "no longer in Redis"},
            **common,
        ),
    }


async def outcome(pg: asyncpg.Pool, job_id: str) -> tuple[str, str | None, str, str | None]:
    row = await pg.fetchrow("SELECT status, error_type FROM jobs WHERE id = $1", job_id)
    attempt = await pg.fetchrow(
        "SELECT outcome, error_type FROM job_attempts WHERE job_id = $1 AND attempt = 1", job_id
    )
    assert row is not None and attempt is not None
    return row["status"], row["error_type"], attempt["outcome"], attempt["error_type"]


async def test_the_earlier_final_wins_even_when_committed_second(pg: asyncpg.Pool) -> None:
    spec = JobSpec(queue="q", name="t")
    ev = run_events(spec, now_ms())
    store = JobStore(pg)
    await store.write([ev["added"], ev["started"]], ["10-0", "11-0"])
    await store.write([ev["lost"]], ["13-0"])  # committed first, but later in the stream
    assert await outcome(pg, spec.job_id) == ("failed", "JobLost", "failed", "JobLost")
    await store.write([ev["completed"]], ["12-0"])
    assert await outcome(pg, spec.job_id) == ("completed", None, "completed", None)
    await store.write([ev["lost"], ev["completed"]], ["13-0", "12-0"])  # redelivered
    assert await outcome(pg, spec.job_id) == ("completed", None, "completed", None)


async def test_two_recorders_with_reordered_duplicates_agree_with_the_stream(
    redis: Redis, pg: asyncpg.Pool
) -> None:
    rng = random.Random(7)
    stream = EventStream(redis, 1_000_000)
    t = now_ms()
    expected: dict[str, tuple[str, str | None]] = {}
    lanes: list[list[Event]] = []
    for n in range(40):
        spec = JobSpec(queue="q", name="t", job_id=f"order-{n:02d}")
        ev = run_events(spec, t)
        first, second = ("completed", "lost") if n % 2 else ("lost", "completed")
        expected[spec.job_id] = (
            ("completed", None) if first == "completed" else ("failed", "JobLost")
        )
        # each final twice, the duplicates in the other order
        lanes.append([ev["added"], ev["started"], ev[first], ev[second], ev[second], ev[first]])
    while lanes:  # interleave the jobs, keeping each job's own order
        lane = rng.choice(lanes)
        await stream.publish(lane.pop(0))
        if not lane:
            lanes.remove(lane)

    async with running(redis, pg, SMALL_BATCHES, "r1"), running(redis, pg, SMALL_BATCHES, "r2"):
        await wait_drained(redis)

    for job_id, (status, error_type) in expected.items():
        assert await outcome(pg, job_id) == (status, error_type, status, error_type), job_id
    assert await pg.fetchval("SELECT count(*) FROM job_attempts") == 40
