"""Attempt counts owned by jobdeck survive any wait (a controllable clock, not a real day)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from jobdeck.events import EventType, now_ms
from jobdeck.queues import JobSpec, QueueClient, delayed_key, job_key
from jobdeck.settings import Settings
from jobdeck_worker import JobContext, TaskRegistry
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.runtime import QueueSpec, WorkerRuntime
from redis.asyncio import Redis

from tests.support.workers import wait_event

DAY_MS = 86_400_000
tasks = TaskRegistry()


@tasks.task("flaky")
async def flaky(job: JobContext) -> int:
    if job.attempt == 1:
        raise ConnectionError("refused on attempt 1")
    return job.attempt


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return now_ms() + self.offset_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def runtime(redis_url: str, clock: Clock) -> AsyncIterator[WorkerRuntime]:
    options = WorkerOptions(
        grace_s=0, fallback_poll_s=0.2, backoff_cap_ms=2 * DAY_MS, backoff_jitter=0.0
    )
    settings = Settings(redis_url=redis_url, instance="parking-worker")
    runtime = WorkerRuntime(settings, tasks, [QueueSpec("parked", 1)], options, clock=clock)
    await runtime.start()
    yield runtime
    await runtime.stop(grace_s=0)


async def test_a_job_parked_for_more_than_a_day_keeps_its_attempt_count(
    runtime: WorkerRuntime, clock: Clock, redis: Redis
) -> None:
    """arq's retry key expired after ~24.6 h and the job started again at attempt 1."""
    spec = JobSpec(queue="parked", name="flaky", backoff_ms=25 * 3_600_000, max_attempts=2)
    await QueueClient(redis, 100_000).enqueue(spec)
    retrying = await wait_event(redis, spec.job_id, EventType.RETRYING)
    assert retrying.fields["retry_at"] - retrying.fields["finished_at"] == 25 * 3_600_000
    assert await redis.zscore(delayed_key("parked"), spec.job_id) == retrying.fields["retry_at"]
    assert await redis.pttl(job_key(spec.job_id)) == -1  # nothing about the job can expire

    clock.offset_ms = 26 * 3_600_000  # a day and two hours later
    done = await wait_event(redis, spec.job_id, EventType.COMPLETED, attempt=2)
    assert done.fields["result"] == 2
    assert await redis.hget(job_key(spec.job_id), "runs") == b"2"
