"""What the API tells about workers and attempts, from a real worker runtime and recorder."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from jobdeck.events import EventType
from jobdeck.queues import WORKERS, WORKERS_INFO, JobSpec, QueueClient, active_key
from jobdeck.settings import Settings
from jobdeck_worker import JobContext, TaskRegistry
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.runtime import QueueSpec, WorkerRuntime
from redis.asyncio import Redis

from tests.integration.test_recorder_consumer import running
from tests.support.api import auth
from tests.support.processes import wait_for
from tests.support.workers import wait_event

tasks = TaskRegistry()


@tasks.task("flaky")
async def flaky(job: JobContext) -> int:
    if job.attempt == 1:
        raise ConnectionError("refused on attempt 1")
    return job.attempt


@tasks.task("hang")
async def hang(job: JobContext) -> None:
    await asyncio.sleep(3600)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[WorkerRuntime]:
    options = WorkerOptions(grace_s=0, heartbeat_s=0.2, lease_s=5, fallback_poll_s=0.5)
    worker_settings = Settings(redis_url=settings.redis_url, instance="api-test-worker")
    runtime = WorkerRuntime(worker_settings, tasks, [QueueSpec("emails", 3)], options)
    await runtime.start()
    yield runtime
    await runtime.stop(grace_s=0)


async def test_job_detail_tells_each_attempts_story(
    runtime: WorkerRuntime, api: TestClient, redis: Redis, pg: asyncpg.Pool
) -> None:
    spec = JobSpec(queue="emails", name="flaky", backoff_ms=1, max_attempts=3)
    async with running(redis, pg):
        await QueueClient(redis, 100_000).enqueue(spec)

        async def recorded() -> bool:
            status = await pg.fetchval("SELECT status FROM jobs WHERE id = $1", spec.job_id)
            return bool(status == "completed")

        await wait_for(recorded, 20, what="the job recorded completed")
    resp = await api.get(f"/api/v1/jobs/{spec.job_id}", headers=auth("viewer"))
    body = await resp.json()
    assert resp.status == 200, body
    first, second = body["attemptHistory"]
    assert (first["attempt"], first["outcome"], first["errorType"]) == (
        1,
        "retrying",
        "ConnectionError",
    )
    assert (
        first["errorMessage"] == "refused on attempt 1" and "Traceback" in first["errorTraceback"]
    )
    assert (second["attempt"], second["outcome"], second["errorType"]) == (2, "completed", None)
    for attempt in (first, second):
        assert attempt["worker"] == "api-test-worker"
        assert attempt["startedAt"] <= attempt["finishedAt"]


async def test_live_workers_with_their_running_jobs(
    runtime: WorkerRuntime, api: TestClient, redis: Redis
) -> None:
    spec = JobSpec(queue="emails", name="hang")
    await QueueClient(redis, 100_000).enqueue(spec)
    await wait_event(redis, spec.job_id, EventType.STARTED)
    await redis.zadd(WORKERS, {"long-gone": 1})  # expired: not listed
    await redis.hset(WORKERS_INFO, "long-gone", json.dumps({"queues": ["emails"]}))

    async def listed() -> list[dict[str, Any]]:
        resp = await api.get("/api/v1/jobs/workers", headers=auth("viewer", ["emails"]))
        assert resp.status == 200
        items: list[dict[str, Any]] = (await resp.json())["items"]
        return items

    async def shows_the_job() -> bool:
        items = await listed()
        return bool(items) and [j["id"] for j in items[0]["jobs"]] == [spec.job_id]

    await wait_for(shows_the_job, 10, what="the worker listing its running job")
    (worker,) = await listed()
    assert worker["instance"] == "api-test-worker"
    assert (worker["host"], worker["pid"]) == (socket.gethostname(), os.getpid())
    assert worker["queues"] == [{"name": "emails", "concurrency": 3}]
    assert worker["active"] == 1 and worker["concurrency"] == 3
    assert worker["jobs"][0]["queue"] == "emails" and worker["jobs"][0]["startedAt"]
    assert worker["lastHeartbeat"] and worker["expiresAt"] > worker["lastHeartbeat"]
    assert await redis.zscore(active_key("emails"), spec.job_id) is not None

    others = await api.get("/api/v1/jobs/workers", headers=auth("viewer", ["reports"]))
    assert (await others.json())["items"] == []  # a token for other queues sees none
    anonymous = await api.get("/api/v1/jobs/workers")
    assert anonymous.status == 401
