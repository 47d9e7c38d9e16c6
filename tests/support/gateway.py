"""Gateway test helpers: run the app in-process, and a recording python-socketio client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jsonschema
import socketio
from aiohttp import web
from jobdeck.settings import Settings
from jobdeck_gateway.app import FANOUT, SIO, build_app
from jobdeck_gateway.config import GatewayConfig
from jobdeck_gateway.fanout import Fanout
from jobdeck_gateway.namespace import JobsNamespace

from tests.support.processes import free_port

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "proto" / "socketio.schema.json"
NS = "/jobs"


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(name: str, payload: Any) -> None:
    """Check one received event against proto/socketio.schema.json."""
    doc = schema()
    sub = {"$ref": f"#/$defs/{name}", "$defs": doc["$defs"]}
    jsonschema.validate(payload, sub)


def validate_ack(name: str, payload: Any) -> None:
    doc = schema()
    ref = doc["x-acks"][name]
    jsonschema.validate(payload, {"$ref": ref, "$defs": doc["$defs"]})


class Gateway:
    def __init__(self, url: str, app: web.Application) -> None:
        self.url = url
        self.app = app

    @property
    def fanout(self) -> Fanout:
        return self.app[FANOUT]

    @property
    def namespace(self) -> JobsNamespace:
        handler: JobsNamespace = self.app[SIO].namespace_handlers[NS]
        return handler


@asynccontextmanager
async def running_gateway(
    settings: Settings, config: GatewayConfig | None = None
) -> AsyncIterator[Gateway]:
    port = free_port()
    app = build_app(settings, config or GatewayConfig(stats_interval_s=0.2))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Gateway(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


class Listener:
    """A python-socketio client on /jobs that records every event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self.sio.on("*", self._record, namespace=NS)
        self.sio.on("connect_error", self._refused, namespace=NS)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    async def _refused(self, data: Any) -> None:
        self.connect_error = data

    async def connect(self, url: str, auth: dict[str, Any] | None, **kw: Any) -> None:
        await self.sio.connect(url, namespaces=[NS], auth=auth, wait_timeout=10, **kw)

    async def call(self, event: str, data: Any = None) -> Any:
        if data is None:
            return await self.sio.call(event, namespace=NS, timeout=10)
        return await self.sio.call(event, data, namespace=NS, timeout=10)

    def named(self, name: str) -> list[Any]:
        return [d for e, d in self.events if e == name]

    async def wait(
        self, name: str, where: Callable[[Any], bool] = lambda d: True, within: float = 10.0
    ) -> Any:
        deadline = time.monotonic() + within
        return await self._wait(name, where, deadline)

    async def _wait(self, name: str, where: Callable[[Any], bool], deadline: float) -> Any:
        while time.monotonic() < deadline:
            for e, d in self.events:
                if e == name and where(d):
                    return d
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {name!r} event; got {[e for e, _ in self.events]}")

    async def close(self) -> None:
        await self.sio.disconnect()
