"""Worker processes for tests, and reading what they wrote to the event stream."""

from __future__ import annotations

from pathlib import Path

from jobdeck.events import Event, EventType, decode
from jobdeck.settings import Settings
from jobdeck.streams import EVENTS
from redis.asyncio import Redis

from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

DEMO_TASKS = "jobdeck_worker.demo"
# Tasks that misbehave on purpose (block the loop, hold a slot); importable because the
# worker process starts in the repository root, as pytest does.
FLEET_TASKS = "tests.support.fleet_tasks"


def start_worker(
    settings: Settings,
    procs: list[ServiceProcess],
    log_dir: Path,
    *args: str,
    tasks: str = DEMO_TASKS,
    **env: str,
) -> ServiceProcess:
    """``python -m jobdeck_worker --tasks <tasks> <args>`` on a free ops port, started."""
    port = free_port()
    environ = settings_env(settings, JOBDECK_WORKER_PORT=str(port), **env)
    proc = ServiceProcess("jobdeck_worker", environ, port, log_dir, ["--tasks", tasks, *args])
    procs.append(proc.start())
    return proc


async def events_of(redis: Redis, job_id: str) -> list[Event]:
    return [
        e for e in (decode(f[b"e"]) for _, f in await redis.xrange(EVENTS)) if e.job_id == job_id
    ]


async def wait_event(
    redis: Redis, job_id: str, etype: EventType, attempt: int = 1, within: float = 20
) -> Event:
    found: list[Event] = []

    async def seen() -> bool:
        found[:] = [
            e for e in await events_of(redis, job_id) if e.type is etype and e.attempt == attempt
        ]
        return bool(found)

    await wait_for(seen, within, what=f"{etype} of attempt {attempt}")
    return found[0]
