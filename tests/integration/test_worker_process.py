"""``python -m jobdeck_worker`` as a real process: ops endpoints, demo tasks, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from jobdeck.events import EventType
from jobdeck.queues import JobSpec, QueueClient, active_key, job_key, queue_key
from jobdeck.settings import Settings
from redis.asyncio import Redis

from tests.support.processes import ServiceProcess, settings_env, wait_for
from tests.support.workers import DEMO_TASKS, events_of, start_worker, wait_event


@pytest.fixture
def worker_settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url)


async def test_demo_worker_parses_a_price_file_and_exposes_ops_endpoints(
    worker_settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    worker = start_worker(worker_settings, service_procs, tmp_path, "--queue", "prices:2")
    await worker.wait_ready()
    client = QueueClient(redis, 100_000)
    good = JobSpec(queue="prices", name="price-file-parser", data={"path": "prices.csv"})
    bad = JobSpec(
        queue="prices",
        name="price-file-parser",
        data={"content": "sku,price\nA,1\nB,oops\n"},
        max_attempts=3,
    )
    await client.enqueue(good)
    await client.enqueue(bad)
    done = await wait_event(redis, good.job_id, EventType.COMPLETED)
    assert done.fields["result"]["rows"] == 15
    failed = await wait_event(redis, bad.job_id, EventType.FAILED)
    assert failed.fields["error_message"] == "line 3: price 'oops' is not a number"
    assert failed.fields["error_type"] == "PriceFileError"  # not retried: the file is wrong

    async with aiohttp.ClientSession(worker.url) as http:
        async with http.get("/healthz") as resp:
            assert resp.status == 200
        async with http.get("/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200
            assert body["checks"] == {"loops": "ok", "redis": "ok", "queues": "ok"}
        async with http.get("/status") as resp:
            status = await resp.json()
            assert status["queues"] == ["prices"] and status["per_queue"]["prices"]["active"] == 0
        async with http.get("/metrics") as resp:
            metrics = await resp.text()
    assert 'jobdeck_worker_jobs_completed_total{queue="prices"} 1.0' in metrics
    assert 'jobdeck_worker_jobs_failed_total{queue="prices"} 1.0' in metrics
    assert 'jobdeck_worker_jobs_running{queue="prices"} 0.0' in metrics
    assert 'jobdeck_worker_job_run_seconds_count{queue="prices"} 2.0' in metrics


async def test_sigterm_lets_running_jobs_finish_and_hands_back_the_rest(
    worker_settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    worker = start_worker(
        worker_settings, service_procs, tmp_path, "--queue", "slow:4", "--grace", "60"
    )
    await worker.wait_ready()
    client = QueueClient(redis, 100_000)
    short = JobSpec(queue="slow", name="sleep", data={"seconds": 0.5, "steps": 2})
    long = JobSpec(queue="slow", name="sleep", data={"seconds": 600}, max_attempts=1)
    await client.enqueue(short)
    await client.enqueue(long)
    await wait_event(redis, short.job_id, EventType.STARTED)
    await wait_event(redis, long.job_id, EventType.STARTED)
    assert worker.proc is not None

    worker.proc.send_signal(signal.SIGTERM)  # stop taking jobs; running ones may finish

    async def stopped_picking() -> bool:
        return "waiting for running jobs" in worker.log_tail()

    await wait_for(stopped_picking, 10, what="the worker stopped taking jobs")
    late = JobSpec(queue="slow", name="noop")
    await client.enqueue(late)
    await wait_event(redis, short.job_id, EventType.COMPLETED)
    assert worker.proc.poll() is None  # still waiting for the long job within its grace

    worker.proc.send_signal(signal.SIGTERM)  # impatient operator: hand the rest back now
    assert worker.stop() == 0
    back = await wait_event(redis, long.job_id, EventType.RETRYING)
    assert back.fields["error_type"] == "WorkerShutdown"
    assert await redis.zscore(queue_key("slow"), long.job_id) is not None
    assert [e.type for e in await events_of(redis, late.job_id)] == [EventType.ADDED]

    successor = start_worker(
        worker_settings, service_procs, tmp_path, "--queue", "slow:4", "--grace", "0"
    )
    await successor.wait_ready()
    await wait_event(redis, late.job_id, EventType.COMPLETED)
    again = await wait_event(redis, long.job_id, EventType.STARTED, attempt=2)
    # the hand-back cost the job no attempt, and did not inflate its budget either
    assert again.fields["max_attempts"] == 1 and again.fields["handed_back"] == 1


async def test_a_killed_workers_job_runs_again_once_its_lease_expires(
    worker_settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    worker = start_worker(
        worker_settings, service_procs, tmp_path, "--queue", "lost", "--lease", "1"
    )
    await worker.wait_ready()
    client = QueueClient(redis, 100_000)
    spec = JobSpec(queue="lost", name="sleep", data={"seconds": 0.5, "steps": 1})
    await client.enqueue(spec)
    await wait_event(redis, spec.job_id, EventType.STARTED)
    worker.kill()  # SIGKILL: no hand-back, no final event

    successor = start_worker(
        worker_settings, service_procs, tmp_path, "--queue", "lost", "--lease", "1"
    )
    await successor.wait_ready()
    done = await wait_event(redis, spec.job_id, EventType.COMPLETED, attempt=2)
    assert done.fields["result"] == {"slept": 0.5}
    lifecycle = [
        (e.type, e.attempt)
        for e in await events_of(redis, spec.job_id)
        if e.type not in (EventType.LOG, EventType.PROGRESS)
    ]
    assert lifecycle == [
        (EventType.ADDED, 1),
        (EventType.STARTED, 1),
        (EventType.RETRYING, 1),  # LeaseExpired: the lost attempt is in the job's history
        (EventType.STARTED, 2),
        (EventType.COMPLETED, 2),
    ]


async def test_a_worker_whose_ops_port_is_taken_exits_before_it_claims_a_job(
    worker_settings: Settings, service_procs: list[ServiceProcess], redis: Redis, tmp_path: Path
) -> None:
    """Its queue loop used to start first: the worker died holding the jobs it had claimed,
    each charged an attempt and stuck for a lease, again at every restart."""
    specs = [JobSpec(queue="clash", name="noop") for _ in range(3)]
    assert all(await QueueClient(redis, 100_000).enqueue_many(specs))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = settings_env(worker_settings, JOBDECK_WORKER_PORT=str(port))
        args = ["--tasks", DEMO_TASKS, "--queue", "clash:2"]
        worker = ServiceProcess("jobdeck_worker", env, port, tmp_path, args)
        service_procs.append(worker.start())
        assert worker.proc is not None
        assert await asyncio.to_thread(worker.proc.wait, 60) != 0
    assert "already in use" in worker.log_tail()
    assert await redis.zcard(active_key("clash")) == 0
    assert await redis.zcard(queue_key("clash")) == 3
    assert [await redis.hget(job_key(s.job_id), "runs") for s in specs] == [b"0"] * 3
