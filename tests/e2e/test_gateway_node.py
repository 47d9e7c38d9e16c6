"""The gateway as a process, with the real npm ``socket.io-client`` (node) as the client.

Node scripts live in ``tests/node`` (``make install`` runs ``npm ci`` there); each prints
what it receives as JSON lines, which these tests validate against the proto schema.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from jobdeck.auth import mint_token
from jobdeck.events import Event, EventType
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.settings import Settings
from jobdeck.streams import EventStream
from redis.asyncio import Redis

from tests.support.gateway import validate, validate_ack
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SECRET = "gateway-tests-secret-0123456789abcdef"
WORKER_MAIN = Path(__file__).resolve().parents[2] / "services/worker/src/jobdeck_worker/__main__.py"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "socket.io-client").exists(),
    reason="node or tests/node/node_modules missing (run make install)",
)


class NodeClient:
    """A node process whose stdout JSON lines are collected as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, script: str, *args: str, env: dict[str, str] | None = None) -> NodeClient:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DIR / script),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=NODE_DIR,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"kind": "stderr", "text": raw.decode(errors="replace")})

    async def wait(
        self, where: Callable[[dict[str, Any]], bool], within: float = 20
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        async def seen() -> bool:
            found[:] = [line for line in self.lines if where(line)]
            return bool(found) or self.proc.returncode is not None

        await wait_for(seen, timeout=within, what=f"node output; got {self.lines[-5:]}")
        assert found, f"node exited: {self.lines}"
        return found[0]

    def events(self, name: str) -> list[Any]:
        return [x["data"] for x in self.lines if x.get("kind") == "event" and x["event"] == name]

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader


@pytest.fixture
def gw_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, jwt_secret=SECRET)


@pytest.fixture
async def gateway(
    gw_settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> ServiceProcess:
    port = free_port()
    env = settings_env(
        gw_settings, JOBDECK_GATEWAY_PORT=str(port), JOBDECK_GATEWAY_STATS_INTERVAL_S="0.2"
    )
    proc = ServiceProcess("jobdeck_gateway", env, port, tmp_path)
    service_procs.append(proc.start())
    await proc.wait_ready()
    return proc


@pytest.fixture
async def nodes() -> AsyncIterator[list[NodeClient]]:
    made: list[NodeClient] = []
    yield made
    for client in made:
        await client.close()


async def node_client(
    made: list[NodeClient], url: str, auth: dict[str, Any] | None, emits: list[Any] = ()
) -> NodeClient:
    config = {"url": url, "auth": auth, "emits": list(emits)}
    client = await NodeClient.start("client.mjs", json.dumps(config))
    made.append(client)
    return client


def token(role: str = "admin", queues: list[str] | str = "*", ttl: int = 600) -> str:
    return mint_token(SECRET, "node-user", [role], queues, ttl_s=ttl)


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (None, "missing_token"),
        ({"token": mint_token(SECRET, "u", ["admin"], "*", ttl_s=-3600)}, "token_expired"),
        ({"token": mint_token("forged-" + "x" * 40, "u", ["admin"], "*")}, "bad_signature"),
    ],
)
async def test_node_client_is_refused_with_a_clear_error(
    gateway: ServiceProcess, nodes: list[NodeClient], auth: dict[str, Any] | None, reason: str
) -> None:
    client = await node_client(nodes, gateway.url, auth)
    refused = await client.wait(lambda x: x["kind"] == "connect_error")
    assert refused["data"]["reason"] == reason and refused["message"]


async def test_node_client_acks_and_room_refusals(
    gateway: ServiceProcess, nodes: list[NodeClient]
) -> None:
    emits = [
        ["subscribeAll", None],
        ["subscribeQueue", {"queue": "not-mine"}],
        ["subscribeQueue", {"queue": "mine"}],
        ["subscribeJob", {"jobId": "j1", "queue": "mine"}],
        ["unsubscribeJob", {"jobId": "j1"}],
        ["unsubscribeQueue", {"queue": "mine"}],
        ["unsubscribeAll", None],
        ["resume", {"lastEventId": "0-0"}],
    ]
    client = await node_client(nodes, gateway.url, {"token": token("viewer", ["mine"])}, emits)
    await client.wait(lambda x: x["kind"] == "ready")
    validate("connected", client.events("connected")[0])
    acks = {
        (x["message"], json.dumps(x["sent"])): x["data"] for x in client.lines if x["kind"] == "ack"
    }
    assert len(acks) == len(emits)
    for (message, _), ack in acks.items():
        validate_ack(message, ack)
    assert acks[("subscribeAll", "null")]["code"] == "forbidden"
    assert acks[("subscribeQueue", '{"queue": "not-mine"}')]["code"] == "forbidden"
    assert acks[("subscribeQueue", '{"queue": "mine"}')]["ok"] is True
    assert acks[("resume", '{"lastEventId": "0-0"}')]["ok"] is True


async def test_node_client_receives_every_event_type_with_the_documented_fields(
    gateway: ServiceProcess,
    nodes: list[NodeClient],
    redis: Redis,
    pg: asyncpg.Pool,
    gw_settings: Settings,
) -> None:
    q = f"q-{uuid.uuid4().hex[:8]}"
    await pg.execute(
        "INSERT INTO job_queue_configs (queue, alert_waiting_backlog) VALUES ($1, 0)", q
    )
    spec = JobSpec(queue=q, name="price-file-parser", data={"secret": "hunter2"})
    emits = [
        ["subscribeQueue", {"queue": q}],
        ["subscribeJob", {"jobId": spec.job_id, "queue": q}],
        ["subscribeAll", None],
    ]
    client = await node_client(nodes, gateway.url, {"token": token("admin")}, emits)
    await client.wait(lambda x: x["kind"] == "ready")

    queues = QueueClient(redis, gw_settings.stream_maxlen)
    await queues.enqueue(spec, by="node-test")
    job = {"queue": q, "job_id": spec.job_id, "attempt": 1, "name": spec.name}
    await EventStream(redis, gw_settings.stream_maxlen).publish_many(
        [
            Event(
                type=EventType.STARTED,
                **job,
                fields={"started_at": 1, "worker": "w", "max_attempts": 3},
            ),
            Event(type=EventType.PROGRESS, **job, fields={"progress": 10, "message": "m"}),
            Event(type=EventType.LOG, **job, fields={"seq": 1, "level": "info", "message": "hi"}),
            Event(
                type=EventType.COMPLETED,
                **job,
                fields={
                    "started_at": 1,
                    "finished_at": 2,
                    "duration_ms": 1,
                    "result": {"secret": "hunter2"},
                },
            ),
            Event(
                type=EventType.FAILED,
                **{**job, "attempt": 2},
                fields={
                    "started_at": 1,
                    "finished_at": 2,
                    "duration_ms": 1,
                    "error_type": "E",
                    "error_message": "boom",
                    "traceback": "hunter2",
                },
            ),
        ]
    )
    await queues.pause(q, by="olga")
    wanted = {
        "connected",
        "jobAdded",
        "jobUpdate",
        "jobProgress",
        "jobLog",
        "jobCompleted",
        "jobFailed",
        "queueStateChange",
        "queueStats",
        "systemStats",
        "alert",
    }

    def mine(x: dict[str, Any]) -> bool:
        return x.get("kind") == "event" and x["event"] == "alert" and x["data"]["queue"] == q

    await client.wait(mine)
    await client.wait(lambda x: x.get("event") == "queueStats" and x["data"]["queue"] == q)
    received = {x["event"] for x in client.lines if x.get("kind") == "event"}
    assert wanted <= received, wanted - received
    for line in client.lines:
        if line.get("kind") == "event":
            validate(line["event"], line["data"])
            assert "hunter2" not in json.dumps(line["data"])


@pytest.mark.skipif(not WORKER_MAIN.exists(), reason="the worker service is not built yet")
async def test_the_seed_snippet_against_a_live_gateway_and_a_live_worker(
    gateway: ServiceProcess,
    gw_settings: Settings,
    redis: Redis,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
    nodes: list[NodeClient],
) -> None:
    worker_port = free_port()
    worker = ServiceProcess(
        "jobdeck_worker",
        settings_env(gw_settings, JOBDECK_WORKER_PORT=str(worker_port)),
        worker_port,
        tmp_path,
        ["--tasks", "jobdeck_worker.demo", "--queue", "price-file-parser:2"],
    )
    service_procs.append(worker.start())
    await worker.wait_ready()
    env = {**os.environ, "JOBDECK_TOKEN": token("admin"), "JOBDECK_ORIGIN": gateway.url}
    seed = await NodeClient.start("seed.mjs", env=env)
    nodes.append(seed)

    async def subscribed() -> bool:  # the snippet's emits have no ack: watch the metrics
        async with aiohttp.ClientSession() as s, s.get(gateway.url + "/metrics") as resp:
            text = await resp.text()
        return 'subscriptions{kind="queue"} 1.0' in text and 'subscriptions{kind="all"} 1.0' in text

    await wait_for(subscribed, timeout=20, what="the snippet's subscriptions")
    spec = JobSpec(queue="price-file-parser", name="price-file-parser", data={"path": "prices.csv"})
    assert await QueueClient(redis, gw_settings.stream_maxlen).enqueue(spec)

    def done(x: dict[str, Any]) -> bool:
        return (
            x.get("kind") == "log"
            and x["args"][1]["jobId"] == spec.job_id
            and x["args"][1]["status"] in ("completed", "failed")
        )

    await seed.wait(done, within=60)
    updates = [x["args"] for x in seed.lines if x.get("kind") == "log"]
    mine = [data for label, data in updates if data["jobId"] == spec.job_id]
    assert all(label == "Job updated:" for label, _ in updates)
    assert [d["status"] for d in mine] == ["waiting", "active", "completed"], mine
    for data in mine:
        validate("jobUpdate", data)
        assert "result" not in data and "data" not in data
    # Subscribed to the queue and to all, the snippet still saw each update once.
    assert len({d["eventId"] for d in mine}) == len(mine)
