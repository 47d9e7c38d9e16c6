"""Several worker processes on one queue, as production runs them: fairness, leases, config.

Each test starts real ``python -m jobdeck_worker`` processes against a real Redis.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient
from jobdeck.events import EventType
from jobdeck.queues import (
    WORKERS_INFO,
    JobSpec,
    QueueClient,
    active_key,
    job_key,
    queue_key,
)
from jobdeck.settings import Settings
from redis.asyncio import Redis

from tests.support.api import auth
from tests.support.processes import ServiceProcess, wait_for
from tests.support.workers import FLEET_TASKS, events_of, start_worker, wait_event


def _per_worker_active(infos: dict[bytes, bytes], queue: str) -> list[int]:
    return sorted(
        json.loads(raw)["per_queue"].get(queue, {}).get("active", 0) for raw in infos.values()
    )


async def test_eight_workers_of_twenty_run_160_jobs_while_600_wait(
    settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    """The reported stall: arq's read window filled with running jobs at 100 of 160."""
    workers = [
        start_worker(settings, service_procs, tmp_path, "--queue", "fleet:20", "--grace", "0",
                     tasks=FLEET_TASKS)
        for _ in range(8)
    ]  # fmt: skip
    await asyncio.gather(*(w.wait_ready(timeout=60) for w in workers))
    client = QueueClient(redis, 100_000)
    specs = [JobSpec(queue="fleet", name="hold", data=60) for _ in range(600)]
    assert all(await client.enqueue_many(specs))

    async def every_slot_busy() -> bool:
        return int(await redis.zcard(active_key("fleet"))) == 160

    try:
        await wait_for(every_slot_busy, 60, what="160 jobs running")
    except TimeoutError as exc:  # say where the fleet stood, to tell a stall from a slow start
        infos = await redis.hgetall(WORKERS_INFO)  # type: ignore[misc]
        running = await redis.zcard(active_key("fleet"))
        waiting = await redis.zcard(queue_key("fleet"))
        per_worker = _per_worker_active(infos, "fleet")
        raise AssertionError(f"{exc}: {running} running, {waiting} waiting, {per_worker}") from None

    async def each_worker_full() -> bool:
        infos = await redis.hgetall(WORKERS_INFO)  # type: ignore[misc]
        return _per_worker_active(infos, "fleet") == [20] * 8

    await wait_for(each_worker_full, 15, what="every worker running 20")
    assert await redis.zcard(queue_key("fleet")) == 440  # the rest wait their turn


async def test_a_task_blocking_the_loop_past_its_lease_runs_once(
    settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    """Leases are renewed from a thread: a blocked loop keeps its job; the watchdog says so."""
    args = ("--queue", "blocky:2", "--lease", "1", "--loop-lag-warn", "0.5")
    owners = [start_worker(settings, service_procs, tmp_path, *args, tasks=FLEET_TASKS)]
    owners.append(start_worker(settings, service_procs, tmp_path, *args, tasks=FLEET_TASKS))
    await asyncio.gather(*(w.wait_ready() for w in owners))
    spec = JobSpec(queue="blocky", name="block", data={"seconds": 3.5}, max_attempts=3)
    await QueueClient(redis, 100_000).enqueue(spec)

    done = await wait_event(redis, spec.job_id, EventType.COMPLETED)
    assert done.fields["result"] == "done"
    lifecycle = [(e.type, e.attempt) for e in await events_of(redis, spec.job_id)]
    assert lifecycle == [
        (EventType.ADDED, 1),
        (EventType.STARTED, 1),
        (EventType.COMPLETED, 1),
    ]
    assert await redis.hget(job_key(spec.job_id), "runs") == b"1"
    logs = "".join(w.log_tail(100_000) for w in owners)
    assert "event loop blocked" in logs and spec.job_id in logs


async def test_a_run_past_its_timeout_loses_its_lease_and_its_late_end_is_ignored(
    settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    """Renewal stops at the job's timeout plus a lease: a task blocked for good loses its
    job to another worker (a new attempt, in its history) and its late outcome is dropped."""
    args = ("--queue", "stuck:1", "--lease", "1", "--fallback-poll", "0.2")
    workers = [
        start_worker(settings, service_procs, tmp_path, *args, tasks=FLEET_TASKS) for _ in "ab"
    ]
    await asyncio.gather(*(w.wait_ready() for w in workers))
    spec = JobSpec(
        queue="stuck",
        name="block",
        data={"seconds": 6, "only_attempt": 1},
        timeout_s=1,
        max_attempts=3,
    )
    await QueueClient(redis, 100_000).enqueue(spec)

    await wait_event(redis, spec.job_id, EventType.COMPLETED, attempt=2)

    async def first_gave_up() -> bool:
        return "its outcome is ignored" in "".join(w.log_tail(100_000) for w in workers)

    await wait_for(first_gave_up, 20, what="the first run's late end")
    events = await events_of(redis, spec.job_id)
    # The blocked run's own `started` was still buffered on its blocked loop: it may come
    # late or not at all; nothing else of attempt 1 came from that run.
    lifecycle = [
        (e.type, e.attempt) for e in events if (e.type, e.attempt) != (EventType.STARTED, 1)
    ]
    assert lifecycle == [
        (EventType.ADDED, 1),
        (EventType.RETRYING, 1),  # LeaseExpired, written by the claim that took it over
        (EventType.STARTED, 2),
        (EventType.COMPLETED, 2),
    ]
    lost = next(e for e in events if e.type is EventType.RETRYING)
    assert lost.fields["error_type"] == "LeaseExpired"


async def test_the_queue_configs_concurrency_applies_to_running_workers(
    settings: Settings,
    service_procs: list[ServiceProcess],
    redis: Redis,
    api: TestClient,
    tmp_path: Path,
) -> None:
    # a 3 s lease: the housekeeping thread reports every second
    args = ("--queue", "knob:2", "--grace", "0", "--lease", "3")
    worker = start_worker(settings, service_procs, tmp_path, *args, tasks=FLEET_TASKS)
    await worker.wait_ready()
    client = QueueClient(redis, 100_000)
    assert all(
        await client.enqueue_many([JobSpec(queue="knob", name="hold", data=60) for _ in range(9)])
    )

    async def running(n: int) -> bool:
        return int(await redis.zcard(active_key("knob"))) == n

    await wait_for(lambda: running(2), 20, what="2 running (the command line)")
    resp = await api.put(
        "/api/v1/jobs/queues/knob/config", json={"concurrency": 5}, headers=auth("admin")
    )
    assert resp.status == 200
    await wait_for(lambda: running(5), 20, what="5 running (the queue config)")
    async with aiohttp.ClientSession() as http, http.get(worker.url + "/status") as status:
        instance = (await status.json())["instance"]

    async def reports(concurrency: int) -> bool:
        info = json.loads(await redis.hget(WORKERS_INFO, instance) or b"{}")
        return bool(info.get("per_queue", {}).get("knob", {}).get("concurrency") == concurrency)

    await wait_for(lambda: reports(5), 15, what="the worker reports 5")
    resp = await api.delete("/api/v1/jobs/queues/knob/config", headers=auth("admin"))
    assert resp.status == 200
    await wait_for(lambda: reports(2), 15, what="back to the command line's 2")
    assert await redis.zcard(active_key("knob")) == 5  # lowering never cuts running jobs
