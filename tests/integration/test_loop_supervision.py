"""A service whose background loop dies says so on /readyz, restarts it, and works again.

The gateway's stream reader (which fans events out to the sockets) and the recorder's
consumer are killed the way a bug would end them (their task ends unasked); readiness
fails, the loop is restarted where it left off, readiness recovers and work flows. The
scheduler's, the exporter's and a worker's loops, and every process's usage sampler, are
killed the same way: /readyz names the dead loop until it runs again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import ClientSession, web
from jobdeck.auth import mint_token
from jobdeck.events import now_ms
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.settings import Settings
from jobdeck.streams import EventStream
from jobdeck.supervise import SUPERVISOR
from jobdeck.usage import USAGE_LOOP
from jobdeck_exporter.app import build_app as build_exporter
from jobdeck_recorder.app import build_app as build_recorder
from jobdeck_scheduler.app import build_app as build_scheduler
from jobdeck_scheduler.config import SchedulerConfig
from jobdeck_worker import TaskRegistry
from jobdeck_worker.app import build_app as build_worker
from jobdeck_worker.runtime import CONTROL_LOOP, EVENT_LOOP, QueueSpec, WorkerRuntime
from redis.asyncio import Redis

from tests.integration.test_recorder_consumer import FAST, job_events
from tests.support.exporter import exporter_config
from tests.support.gateway import Listener, running_gateway
from tests.support.processes import wait_for

SECRET = "loop-supervision-secret-0123456789abcdef"


def kill(app: web.Application, loop: str) -> None:
    supervisor = app[SUPERVISOR]
    supervisor.settle_s = 0.3  # ready again soon after the restart (5 s in production)
    task = supervisor.loops[loop].task
    assert task is not None and not task.done()
    task.cancel()


async def readiness(get: Any) -> tuple[int, dict[str, Any]]:
    async with get("/readyz") as resp:
        return resp.status, await resp.json()


async def test_the_gateway_restarts_a_dead_stream_reader_and_readyz_says_so_meanwhile(
    settings: Settings, redis: Redis
) -> None:
    gw_settings = dataclasses.replace(settings, jwt_secret=SECRET, instance="gw-loops")
    async with running_gateway(gw_settings) as gw, ClientSession(gw.url) as http:
        listener = Listener()
        token = mint_token(SECRET, "admin", ["admin"], "*")
        await listener.connect(gw.url, {"token": token})
        assert (await listener.call("subscribeAll"))["ok"] is True
        assert (await readiness(http.get))[0] == 200

        kill(gw.app, "fanout")

        async def down() -> bool:
            status, body = await readiness(http.get)
            return status == 503 and "fanout (cancelled" in body["checks"]["loops"]

        await wait_for(down, timeout=10, what="/readyz to report the dead reader")

        async def up() -> bool:
            return (await readiness(http.get))[0] == 200

        await wait_for(up, timeout=10, what="/readyz after the restart")
        spec = JobSpec(queue="loops", name="t")
        await QueueClient(redis, 10_000).enqueue(spec)
        added = await listener.wait("jobAdded", lambda d: d["jobId"] == spec.job_id)
        assert added["queue"] == "loops"
        await listener.close()


async def test_the_recorder_restarts_a_dead_consumer_and_records_what_follows(
    aiohttp_client: Any, settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    client = await aiohttp_client(build_recorder(settings, dataclasses.replace(FAST)))
    assert (await client.get("/readyz")).status == 200
    kill(client.server.app, "recorder")

    async def down() -> bool:
        resp = await client.get("/readyz")
        body = await resp.json()
        return resp.status == 503 and "recorder (cancelled" in body["checks"]["loops"]

    await wait_for(down, timeout=10, what="/readyz to report the dead consumer")

    async def up() -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_for(up, timeout=10, what="/readyz after the restart")
    spec = JobSpec(queue="q", name="task")
    await EventStream(redis, 1_000_000).publish_many(
        [spec.added_event(now_ms()), *job_events(spec.job_id)]
    )

    async def recorded() -> bool:
        status = await pg.fetchval("SELECT status FROM jobs WHERE id = $1", spec.job_id)
        return bool(status == "completed")

    await wait_for(recorded, timeout=15, what="the restarted consumer to record the job")
    metrics = await (await client.get("/metrics")).text()
    assert 'jobdeck_loop_restarts_total{loop="recorder"}' in metrics


async def dies_and_recovers(app: web.Application, get: Any, loop: str) -> None:
    """Kill ``loop``: /readyz is 503 naming it, then 200 once it runs again."""
    assert (await readiness(get))[0] == 200
    kill(app, loop)

    async def down() -> bool:
        status, body = await readiness(get)
        return status == 503 and f"{loop} (cancelled" in body["checks"]["loops"]

    await wait_for(down, timeout=10, what=f"/readyz to report the dead {loop}")

    async def up() -> bool:
        return (await readiness(get))[0] == 200

    await wait_for(up, timeout=10, what=f"/readyz after {loop} restarted")
    assert app[SUPERVISOR].loops[loop].restarts == 1


async def test_the_scheduler_loops_and_usage_sampler_are_supervised(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(build_scheduler(settings, SchedulerConfig()))

    async def ticking() -> bool:
        return (await readiness(client.get))[0] == 200

    await wait_for(ticking, timeout=10, what="the scheduler's first tick")
    for loop in ("scheduler-firing", "scheduler-listen", "scheduler-outcomes", USAGE_LOOP):
        await dies_and_recovers(client.server.app, client.get, loop)


async def test_the_exporter_loops_are_supervised(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    client = await aiohttp_client(build_exporter(settings, exporter_config(tmp_path)))

    async def consuming() -> bool:
        return (await readiness(client.get))[0] == 200

    await wait_for(consuming, timeout=10, what="the exporter to read its stream")
    for loop in ("export-consumer", "export-janitor", USAGE_LOOP):
        await dies_and_recovers(client.server.app, client.get, loop)


async def test_a_worker_restarts_its_event_flusher_and_control_listener(
    aiohttp_client: Any, settings: Settings
) -> None:
    worker_settings = Settings(redis_url=settings.redis_url, instance="loops-worker")
    runtime = WorkerRuntime(worker_settings, TaskRegistry(), [QueueSpec("loops", 2)])
    await runtime.start()
    try:
        client = await aiohttp_client(build_worker(runtime))
        for loop in (EVENT_LOOP, CONTROL_LOOP, USAGE_LOOP):
            await dies_and_recovers(client.server.app, client.get, loop)
    finally:
        await runtime.stop(grace_s=0)
