"""The test harness's own promises: a service process gets a port no other one gets."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from jobdeck.settings import Settings
from jobdeck.web import create_app

from tests.support.processes import ServiceProcess, free_port


def _any_port() -> int:
    """What a port-0 bind of another test (or another pytest process) gets."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_free_port_is_handed_out_once_while_services_start() -> None:
    """Two of the fleet test's eight workers on one port: one cannot bind and exits, the
    other one's /readyz answers for it, and 140 of the 160 slots exist (a 60 s timeout)."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & {_any_port() for _ in range(500)}


async def test_a_service_listens_on_its_free_port() -> None:
    port = free_port()
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", port)
    server.close()
    await server.wait_closed()


def _idle_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


async def test_a_service_whose_port_another_process_answers_on_is_not_ready(
    tmp_path: Path,
) -> None:
    """The fleet test's failure: a worker that could not bind exits, and the /readyz of the
    one holding its port used to make it look ready. Here the port is held by this test's
    own ops app, and the service is a process that never serves."""
    port = free_port()
    app = create_app(Settings())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    service = ServiceProcess("this_module_does_not_exist", dict(os.environ), port, tmp_path)
    service.proc = _idle_process()
    try:
        with pytest.raises(RuntimeError, match=f"answered by pid {os.getpid()}, not by this"):
            await service.wait_ready(timeout=10)
    finally:
        service.kill()
        await runner.cleanup()
