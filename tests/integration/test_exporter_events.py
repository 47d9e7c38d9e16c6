"""Export events over Socket.IO: the requester's own sockets get exportProgress and
exportCompleted (or exportFailed), and nobody else does, not even an admin subscribed to all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_exporter.app import build_app

from tests.support.api import auth, job_row, seed, token
from tests.support.exporter import exporter_config, finished_export
from tests.support.gateway import Gateway, Listener, running_gateway, validate


@pytest.fixture
async def gateway(export_settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(export_settings) as gw:
        yield gw


async def connect(gateway: Gateway, tok: str) -> Listener:
    listener = Listener()
    await listener.connect(gateway.url, {"token": tok})
    await listener.wait("connected")
    return listener


async def test_export_events_reach_only_the_requesters_sockets(
    api: TestClient, exporter: TestClient, gateway: Gateway, pg: Any
) -> None:
    await seed(pg, [job_row() for _ in range(30)])  # chunks of 7 rows: several progress events
    alice_tab1 = await connect(gateway, token("viewer", sub="alice"))
    alice_tab2 = await connect(gateway, token("viewer", sub="alice"))
    admin = await connect(gateway, token("admin", sub="root"))
    assert (await admin.call("subscribeAll"))["ok"]
    try:
        info = await finished_export(api, {"format": "csv"}, auth("viewer", sub="alice"))
        for tab in (alice_tab1, alice_tab2):
            done = await tab.wait("exportCompleted", lambda d: d["exportId"] == info["id"])
            validate("exportCompleted", done)
            assert done["url"] == info["url"] and done["rows"] == 30
            progress = tab.named("exportProgress")
            assert progress and all(p["exportId"] == info["id"] for p in progress)
            for p in progress:
                validate("exportProgress", p)
        assert not [e for e, _ in admin.events if e.startswith("export")]
    finally:
        for listener in (alice_tab1, alice_tab2, admin):
            await listener.close()


async def test_a_failed_export_says_why_to_the_requester(
    api: TestClient, export_settings: Settings, gateway: Gateway, pg: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("storage cannot live under a file")
    settings = replace(export_settings, storage_url=f"file://{blocker}/exports")
    app = build_app(settings, exporter_config(tmp_path))
    await seed(pg, [job_row()])
    alice = await connect(gateway, token("viewer", sub="alice"))
    try:
        async with TestClient(TestServer(app)):
            info = await finished_export(api, {"format": "json"}, auth("viewer", sub="alice"))
        assert info["status"] == "failed" and info["url"] is None
        assert "NotADirectoryError" in info["error"], info
        failed = await alice.wait("exportFailed", lambda d: d["exportId"] == info["id"])
        validate("exportFailed", failed)
        assert failed["error"] == info["error"]
    finally:
        await alice.close()
