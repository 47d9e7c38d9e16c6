"""Unauthenticated load on a gateway process: polling handshakes that never join, and
what they cost it (shared by the e2e test and ``bench/gateway_flood.py``)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) * 1024


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    """An unlabelled metric of the process at ``url`` (0 if it has none of that name)."""
    async with session.get(url + "/metrics") as resp:
        text = await resp.text()
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def handshakes(session: aiohttp.ClientSession, url: str, n: int) -> list[str]:
    """``n`` polling handshakes, 50 at a time; the ids of the sessions opened (those
    refused by the gateway's cap on unjoined sessions, a 503, are not)."""
    sids: list[str] = []

    async def one() -> None:
        async with session.get(url + "/socket.io/?EIO=4&transport=polling") as resp:
            text = await resp.text()
            if resp.status == 503:
                return
            assert resp.status == 200, text
            sids.append(json.loads(text[1:])["sid"])

    for start in range(0, n, 50):
        await asyncio.gather(*(one() for _ in range(min(50, n - start))))
    return sids
