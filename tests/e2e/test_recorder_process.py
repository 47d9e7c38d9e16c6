"""The recorder as a process: killed with SIGKILL mid-stream, restarted, nothing lost or doubled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from jobdeck.events import Event, EventType, now_ms
from jobdeck.queues import JobSpec
from jobdeck.settings import Settings
from jobdeck.streams import EVENTS, EventStream
from redis.asyncio import Redis

from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

JOBS = 400
LOGS_PER_JOB = 3


def lifecycle(spec: JobSpec) -> list[Event]:
    t = now_ms()
    common: dict[str, Any] = {
        "queue": spec.queue,
        "job_id": spec.job_id,
        "attempt": 1,
        "name": spec.name,
    }
    return [
        spec.added_event(t),
        Event(
            EventType.STARTED,
            ts=t + 1,
            fields={"started_at": t + 1, "worker": "w", "max_attempts": 3},
            **common,
        ),
        Event(EventType.PROGRESS, ts=t + 2, fields={"progress": 50}, **common),
        *[
            Event(
                EventType.LOG,
                ts=t + 3,
                fields={"seq": i, "level": "info", "message": f"line {i}"},
                **common,
            )
            for i in range(1, LOGS_PER_JOB + 1)
        ],
        Event(
            EventType.COMPLETED,
            ts=t + 9,
            fields={
                "started_at": t + 1,
                "finished_at": t + 9,
                "duration_ms": 8,
                "result": {"id": spec.job_id},
            },
            **common,
        ),
    ]


def recorder(settings: Settings, tmp_path: Path, instance: str) -> ServiceProcess:
    port = free_port()
    env = settings_env(
        settings,
        JOBDECK_RECORDER_PORT=str(port),
        JOBDECK_INSTANCE=instance,
        JOBDECK_RECORDER_BATCH_SIZE="100",
        JOBDECK_RECORDER_CLAIM_IDLE_MS="1000",
        JOBDECK_RECORDER_CLAIM_INTERVAL_MS="300",
        JOBDECK_RECORDER_BACKOFF_MAX_MS="500",
    )
    return ServiceProcess("jobdeck_recorder", env, port, tmp_path)


async def test_sigkill_mid_stream_then_restart_records_every_event_once(
    settings: Settings,
    redis: Redis,
    pg: asyncpg.Pool,
    tmp_path: Path,
    service_procs: list[ServiceProcess],
) -> None:
    first = recorder(settings, tmp_path, "recorder-a").start()
    service_procs.append(first)
    await first.wait_ready()

    stream = EventStream(redis, 1_000_000)
    specs = [JobSpec(queue=f"q{n % 3}", name="task", data={"n": n}) for n in range(JOBS)]

    async def produce() -> None:
        for i in range(0, JOBS, 10):
            await stream.publish_many([e for s in specs[i : i + 10] for e in lifecycle(s)])
            await asyncio.sleep(0.005)  # a steady trickle, so the kill lands mid-stream

    producer = asyncio.create_task(produce())

    async def some_recorded() -> bool:
        return bool(await pg.fetchval("SELECT count(*) FROM jobs") > 0)

    await wait_for(some_recorded, what="the first recorder to write")
    first.kill()
    assert not producer.done()  # killed while events were still arriving
    await producer

    second = recorder(settings, tmp_path, "recorder-b").start()
    service_procs.append(second)
    await second.wait_ready()

    async def all_recorded() -> bool:
        done = await pg.fetchval("SELECT count(*) FROM jobs WHERE status = 'completed'")
        groups = await redis.xinfo_groups(EVENTS)
        return bool(done == JOBS and groups[0]["lag"] == 0 and groups[0]["pending"] == 0)

    await wait_for(all_recorded, timeout=60, what="every job recorded after the restart")

    assert await pg.fetchval("SELECT count(*) FROM job_logs") == JOBS * LOGS_PER_JOB
    wrong = await pg.fetchval(
        "SELECT count(*) FROM jobs WHERE attempts <> 1 OR progress <> 100 OR data IS NULL"
        " OR result->>'id' <> id OR duration_ms <> 8 OR worker <> 'w'"
    )
    assert wrong == 0

    async with aiohttp.ClientSession() as http, http.get(second.url + "/lag") as resp:
        body = await resp.json()
    assert resp.status == 200 and body["behind"] == 0
    assert second.stop() == 0  # SIGTERM: graceful
