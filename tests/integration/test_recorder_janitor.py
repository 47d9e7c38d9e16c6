"""The recorder's janitor against real Redis and Postgres: lost jobs fail, live ones stay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
from jobdeck.events import Event, EventType, now_ms
from jobdeck.queues import JobSpec, QueueClient, job_key
from jobdeck.settings import Settings
from jobdeck.streams import EVENTS
from jobdeck_recorder.janitor import LEASE_KEY, Candidate, Janitor
from jobdeck_recorder.store import QUERIES, JobStore
from redis.asyncio import Redis

from tests.integration.test_recorder_consumer import FAST, running, wait_drained

CONFIG = replace(FAST, lost_after_ms=60_000, lost_confirm_ms=50, janitor_batch=1_000)


def started(spec: JobSpec, attempt: int = 1, at: int | None = None) -> Event:
    at = at or now_ms()
    return Event(
        EventType.STARTED,
        queue=spec.queue,
        job_id=spec.job_id,
        attempt=attempt,
        name=spec.name,
        ts=at,
        fields={"started_at": at, "worker": "w1", "max_attempts": 3},
    )


def retrying(spec: JobSpec) -> Event:
    t = now_ms()
    return Event(
        EventType.RETRYING,
        queue=spec.queue,
        job_id=spec.job_id,
        attempt=1,
        name=spec.name,
        ts=t,
        fields={
            "started_at": t - 10,
            "finished_at": t,
            "duration_ms": 10,
            "error_type": "IOError",
            "error_message": "flaky",
            "traceback": None,
            "retry_at": t + 60_000,
        },
    )


async def backdate(pg: asyncpg.Pool, specs: list[JobSpec], minutes: int = 10) -> None:
    await pg.execute(
        "UPDATE jobs SET updated_at = now() - make_interval(mins => $2) WHERE id = ANY($1)",
        [s.job_id for s in specs],
        minutes,
    )


async def rows(pg: asyncpg.Pool) -> dict[str, Any]:
    return {r["id"]: r for r in await pg.fetch("SELECT * FROM jobs")}


async def test_stale_rows_whose_job_left_redis_fail_as_lost_and_live_ones_stay(
    settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    store = JobStore(pg)
    t = now_ms()
    active_gone = JobSpec(queue="q", name="task")
    waiting_gone = JobSpec(queue="q", name="task")
    retry_gone = JobSpec(queue="q", name="task")
    queued = JobSpec(queue="q", name="task", run_at_ms=t + 3_600_000)  # delayed, in Redis
    running_job = JobSpec(queue="q", name="task")  # active, its hash in Redis
    fresh_gone = JobSpec(queue="q", name="task")  # missing, but touched a moment ago
    await store.write(
        [
            active_gone.added_event(t),
            started(active_gone, at=t + 5),
            waiting_gone.added_event(t),
            retry_gone.added_event(t),
            started(retry_gone),
            retrying(retry_gone),
            running_job.added_event(t),
            started(running_job),
            fresh_gone.added_event(t),
        ]
    )
    assert await QueueClient(redis, 1_000_000).enqueue(queued)  # writes its own `added`
    await redis.hset(job_key(running_job.job_id), "state", "active")

    async with running(redis, pg):
        await wait_drained(redis)
        assert len(await rows(pg)) == 6
        await backdate(pg, [active_gone, waiting_gone, retry_gone, queued, running_job])

        janitor = Janitor(redis, pg, CONFIG, "janitor-1", 1_000_000)
        rival = Janitor(redis, pg, CONFIG, "janitor-2", 1_000_000)
        assert await janitor.run_once() == 3
        assert await rival.run_once() == 0  # the lease is janitor-1's
        assert await redis.get(LEASE_KEY) == b"janitor-1"
        await wait_drained(redis)

    after = await rows(pg)
    for spec in (active_gone, waiting_gone, retry_gone):
        row = after[spec.job_id]
        assert (row["status"], row["error_type"]) == ("failed", "JobLost"), dict(row)
        assert "no longer in Redis" in row["error_message"]
        assert row["finished_at"] is not None
    assert after[active_gone.job_id]["attempts"] == 1
    assert after[active_gone.job_id]["duration_ms"] >= 0
    assert after[waiting_gone.job_id]["started_at"] is None
    assert after[retry_gone.job_id]["attempts"] == 2  # the attempt waiting to run was lost
    assert after[queued.job_id]["status"] == "delayed"
    assert after[running_job.job_id]["status"] == "active"
    assert after[fresh_gone.job_id]["status"] == "waiting"
    assert janitor.failed == 3


async def test_a_job_back_in_redis_before_the_confirmation_is_left_alone(
    settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    """A worker restoring its running job (after a Redis restart) saves it."""
    spec = JobSpec(queue="q", name="task")
    await JobStore(pg).write([spec.added_event(now_ms()), started(spec)])
    await backdate(pg, [spec])

    class Renewed(Janitor):
        checks: list[list[str]] = []

        async def missing(self, rows: Sequence[Candidate]) -> list[Candidate]:
            found = await super().missing(rows)
            self.checks.append([j.id for j in found])
            if len(self.checks) == 1:  # the worker's lease renewal comes in meanwhile
                await redis.hset(job_key(spec.job_id), "state", "active")
            return found

    janitor = Renewed(redis, pg, CONFIG, "j", 1_000_000)
    assert await janitor.run_once() == 0
    assert janitor.checks == [[spec.job_id], []]
    assert await redis.xlen(EVENTS) == 0


async def test_passes_are_bounded_and_page_through_every_stale_row(
    settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    specs = [JobSpec(queue="q", name="task", data={"n": n}) for n in range(7)]
    await JobStore(pg).write([s.added_event(now_ms()) for s in specs])
    await backdate(pg, specs)
    janitor = Janitor(
        redis, pg, replace(CONFIG, janitor_batch=3, lost_confirm_ms=0), "j", 1_000_000
    )
    counts = [await janitor.run_once() for _ in range(3)]
    assert counts == [3, 3, 1]
    assert await redis.xlen(EVENTS) == 7  # each row once: the cursor moved on
    # then from the start again (no recorder ran here: the rows are still unfinished)
    assert await janitor.run_once() == 3


async def test_the_candidate_query_is_an_index_range_scan(pg: asyncpg.Pool) -> None:
    """On a table of mostly finished jobs, the pass reads the partial index only."""
    async with pg.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO jobs (id, queue, status, created_at, updated_at)
            SELECT 'j' || n, 'q',
                   CASE WHEN n % 4 = 0 THEN 'waiting' ELSE 'completed' END,
                   now(), now() - make_interval(secs => n)
            FROM generate_series(1, 40000) AS n
            """
        )
        await conn.execute("ANALYZE jobs")
        for name, args in (
            ("unfinished_stale_first", (60_000, 1_000)),
            ("unfinished_stale_after", (60_000, 1_000, datetime(2026, 1, 1, tzinfo=UTC), "j1")),
        ):
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + QUERIES[name], *args))
            assert "jobs_unfinished_updated_idx" in plan, plan
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
