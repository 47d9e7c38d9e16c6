"""A Redis restart (no persistence: queues and stream gone) under running services.

Runs a private redis-server on a free port, the recorder, a worker and the gateway as
processes against it, kills Redis and starts it again on the same port. Nothing may exit;
every /readyz goes 503 and back; the same worker runs new jobs, the same recorder records
them (on a consumer group it recreated), a Socket.IO client sees them; jobs that vanished
with Redis are failed by the recorder's janitor (JobLost) instead of staying stuck, and a
job that kept running through the outage still completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import socketio
from jobdeck.auth import mint_token
from jobdeck.events import now_ms
from jobdeck.queues import JobSpec, QueueClient, job_key
from jobdeck.settings import Settings
from jobdeck.streams import EVENTS
from jobdeck_recorder.config import GROUP
from redis.asyncio import Redis

from tests.conftest import TEST_JWT_SECRET
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

NS = "/jobs"
LEASE_S = "3"  # worker lease: its housekeeping (lease renewal) runs every second
LOST_AFTER_MS = "3000"  # janitor grace: unfinished rows untouched this long are checked
LOST_CONFIRM_MS = "1500"  # and failed if still missing this much later (> lease renewal)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


class PrivateRedis:
    """A redis-server without persistence on a port of its own; kill and start at will."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_path = log_dir / f"redis-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        async def answers() -> bool:
            client = Redis.from_url(self.url)
            try:
                return bool(await client.ping())
            except Exception:
                return False
            finally:
                await client.aclose()

        await wait_for(answers, 10, what="private redis-server up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port(), tmp_path)
    yield server
    server.kill()


@pytest.fixture
async def rredis(private_redis: PrivateRedis) -> AsyncIterator[Redis]:
    await private_redis.start()
    client = Redis.from_url(private_redis.url)
    yield client
    await client.aclose()


class Watcher:
    """A Socket.IO client on /jobs subscribed to some queues; reconnects if its link drops."""

    def __init__(self, url: str, queues: list[str]) -> None:
        self.url = url
        self.queues = queues
        self.token = mint_token(TEST_JWT_SECRET, "watcher", ["admin"], "*", ttl_s=600)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.completed: set[str] = set()
        self.failed: dict[str, Any] = {}
        self.sio.on("jobCompleted", self._completed, namespace=NS)
        self.sio.on("jobFailed", self._failed, namespace=NS)

    async def _completed(self, data: Any) -> None:
        self.completed.add(data["jobId"])

    async def _failed(self, data: Any) -> None:
        self.failed[data["jobId"]] = data

    async def ensure(self) -> None:
        if not self.sio.connected:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()
            await self.sio.connect(
                self.url, namespaces=[NS], auth={"token": self.token}, wait_timeout=10
            )
        for queue in self.queues:
            reply = await self.sio.call("subscribeQueue", {"queue": queue}, NS, timeout=10)
            assert reply["ok"], reply

    async def saw_completed(self, job_ids: set[str]) -> bool:
        if not self.sio.connected:  # a dropped link is fine: reconnect and keep watching
            await self.ensure()
        return job_ids <= self.completed

    async def close(self) -> None:
        await self.sio.disconnect()


def start(
    module: str,
    settings: Settings,
    procs: list[ServiceProcess],
    log_dir: Path,
    args: list[str] = (),  # type: ignore[assignment]
    **extra: str,
) -> ServiceProcess:
    port = free_port()
    service = module.removeprefix("jobdeck_").upper()
    env = settings_env(settings, **{f"JOBDECK_{service}_PORT": str(port)}, **extra)
    proc = ServiceProcess(module, env, port, log_dir, list(args))
    procs.append(proc.start())
    return proc


async def readyz(session: aiohttp.ClientSession, proc: ServiceProcess) -> int:
    try:
        async with session.get(proc.url + "/readyz") as resp:
            return resp.status
    except aiohttp.ClientError:
        return -1


async def status_of(pg: asyncpg.Pool, job_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await pg.fetch(
        "SELECT id, status, worker, error_type, error_message, attempts, started_at,"
        " finished_at, duration_ms FROM jobs WHERE id = ANY($1::text[])",
        job_ids,
    )
    return {r["id"]: r for r in rows}


async def all_status(pg: asyncpg.Pool, job_ids: list[str], wanted: str) -> bool:
    rows = await status_of(pg, job_ids)
    return len(rows) == len(job_ids) and all(r["status"] == wanted for r in rows.values())


@pytest.mark.timeout(90)
async def test_services_ride_out_a_redis_restart_and_lost_jobs_fail(
    settings: Settings,
    pg: asyncpg.Pool,
    private_redis: PrivateRedis,
    rredis: Redis,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    cfg = Settings(
        database_url=settings.database_url,
        redis_url=private_redis.url,
        jwt_secret=TEST_JWT_SECRET,
        stream_maxlen=100_000,
    )
    queue, orphan = f"rr-{uuid.uuid4().hex[:6]}", f"rr-orphan-{uuid.uuid4().hex[:6]}"
    recorder = start(
        "jobdeck_recorder",
        cfg,
        service_procs,
        tmp_path,
        JOBDECK_RECORDER_BLOCK_MS="200",
        JOBDECK_RECORDER_CLAIM_INTERVAL_MS="300",
        JOBDECK_RECORDER_BACKOFF_MAX_MS="500",
        JOBDECK_RECORDER_JANITOR_INTERVAL_MS="300",
        JOBDECK_RECORDER_LOST_AFTER_MS=LOST_AFTER_MS,
        JOBDECK_RECORDER_LOST_CONFIRM_MS=LOST_CONFIRM_MS,
    )
    worker = start(
        "jobdeck_worker",
        cfg,
        service_procs,
        tmp_path,
        [
            "--tasks",
            "jobdeck_worker.demo",
            "--queue",
            f"{queue}:4",
            "--lease",
            LEASE_S,
            "--grace",
            "1",
        ],
    )
    gateway = start("jobdeck_gateway", cfg, service_procs, tmp_path)
    services = [recorder, worker, gateway]
    await asyncio.gather(*(p.wait_ready() for p in services))

    async with aiohttp.ClientSession() as http, http.get(worker.url + "/status") as resp:
        worker_instance = (await resp.json())["instance"]
    watcher = Watcher(gateway.url, [queue, orphan])
    await watcher.ensure()
    client = QueueClient(rredis, cfg.stream_maxlen)
    try:
        # Before: jobs run, are recorded and are seen live.
        before = [JobSpec(queue=queue, name="echo", data={"n": n}) for n in range(3)]
        assert all(await client.enqueue_many(before))
        ids_before = [s.job_id for s in before]
        await wait_for(lambda: all_status(pg, ids_before, "completed"), 20, what="first jobs")
        await wait_for(lambda: watcher.saw_completed(set(ids_before)), 10, what="first events")

        # Jobs the restart will lose: delayed ones, and waiting ones no worker serves.
        later = now_ms() + 3_600_000
        lost = [JobSpec(queue=queue, name="echo", run_at_ms=later) for _ in range(2)]
        lost += [JobSpec(queue=orphan, name="echo") for _ in range(2)]
        # And one that is running through the outage: its worker still finishes it.
        through = JobSpec(queue=queue, name="sleep", data={"seconds": 7, "steps": 28})
        assert all(await client.enqueue_many([*lost, through]))
        lost_ids = [s.job_id for s in lost]
        await wait_for(lambda: all_status(pg, [through.job_id], "active"), 20, what="running")
        rows = await status_of(pg, lost_ids)
        assert sorted(r["status"] for r in rows.values()) == [
            "delayed",
            "delayed",
            "waiting",
            "waiting",
        ]

        # Redis dies: every service stays up and says it is not ready.
        private_redis.kill()
        async with aiohttp.ClientSession() as http:

            async def all_unready() -> bool:
                codes = [await readyz(http, p) for p in services]
                return all(c == 503 for c in codes)

            await wait_for(all_unready, 15, what="every /readyz 503 while redis is down")
            # Keep it down past the worker's idle poll and the recorder's claim/janitor
            # timers, so each of their loops meets the outage (a duration, not a wait).
            await asyncio.sleep(2)
            assert all(p.proc is not None and p.proc.poll() is None for p in services), [
                p.log_tail() for p in services
            ]

            await private_redis.start()  # same port, empty

            async def all_ready() -> bool:
                codes = [await readyz(http, p) for p in services]
                return all(c == 200 for c in codes)

            await wait_for(all_ready, 20, what="every /readyz 200 after the restart")

        # The worker says again that it runs the job that went through the outage.
        async def leased() -> bool:
            return await rredis.hget(job_key(through.job_id), "state") == b"active"

        await wait_for(leased, 10, what="the running job restored by its worker")

        # After: new jobs run on the same worker, land through the same recorder.
        after = [JobSpec(queue=queue, name="echo", data={"n": n}) for n in range(3)]
        assert all(await client.enqueue_many(after))
        ids_after = [s.job_id for s in after]
        await wait_for(lambda: all_status(pg, ids_after, "completed"), 20, what="jobs after")
        rows = await status_of(pg, ids_after)
        assert {r["worker"] for r in rows.values()} == {worker_instance}
        groups = await rredis.xinfo_groups(EVENTS)
        assert [g["name"] for g in groups] == [GROUP.encode()]
        await wait_for(lambda: watcher.saw_completed(set(ids_after)), 15, what="events after")

        # The lost jobs end up failed (JobLost), the one that ran through completes.
        await wait_for(lambda: all_status(pg, lost_ids, "failed"), 20, what="lost jobs failed")
        for row in (await status_of(pg, lost_ids)).values():
            assert row["error_type"] == "JobLost"
            assert "no longer" in row["error_message"]
            assert row["finished_at"] is not None
        await wait_for(
            lambda: all_status(pg, [through.job_id], "completed"), 20, what="survivor completes"
        )
        assert set(lost_ids) <= set(watcher.failed)

        assert all(p.proc is not None and p.proc.poll() is None for p in services), [
            p.log_tail() for p in services
        ]
    finally:
        await watcher.close()
    for proc in services:
        assert proc.stop() == 0, proc.log_tail()
