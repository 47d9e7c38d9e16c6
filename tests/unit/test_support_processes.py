"""The test harness's own promises: a service process gets a port no other one gets."""

from __future__ import annotations

import asyncio
import socket

from tests.support.processes import free_port


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
