"""Resource usage from live processes: each service samples itself, the API shows it, and
the gateway raises each resource alert once per crossing."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jobdeck.events import EventType, decode
from jobdeck.settings import Settings
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis

from tests.support.api import SECRET, auth
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

SERVICES = {"api", "recorder", "gateway", "worker"}
URL = "/api/v1/jobs/analytics/resource-usage"


@pytest.fixture
async def stack(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> AsyncIterator[str]:
    env = settings_env(
        settings,
        JOBDECK_JWT_SECRET=SECRET,
        JOBDECK_LOG_LEVEL="WARNING",
        JOBDECK_USAGE_INTERVAL_MS="200",
        JOBDECK_GATEWAY_STATS_INTERVAL_S="0.2",
        JOBDECK_ALERT_PROCESS_RSS_MB="1",  # every process is over it
        JOBDECK_ALERT_PROCESS_CPU_PCT="100000",  # no process is over it
    )
    ports = {name: free_port() for name in ("recorder", "worker", "api", "gateway")}
    procs = [
        ServiceProcess(
            f"jobdeck_{name}", {**env, f"JOBDECK_{name.upper()}_PORT": str(port)}, port, tmp_path
        )
        for name, port in ports.items()
    ]
    procs[1].args = ["--tasks", "jobdeck_worker.demo", "--queue", "alpha:2"]
    for proc in procs:
        service_procs.append(proc.start())
    for proc in procs:
        await proc.wait_ready()
    yield f"http://127.0.0.1:{ports['api']}"


async def alert_events(redis: Redis) -> list[dict[str, Any]]:
    found = []
    for _, fields in await redis.xrange(EVENTS):
        event = decode(fields[EVENT_FIELD])
        if event.type is EventType.ALERT:
            found.append(event.fields)
    return found


@pytest.mark.timeout(120)
async def test_processes_sample_themselves_and_resource_alerts_fire_once(
    stack: str, redis: Redis
) -> None:
    async with aiohttp.ClientSession() as http:

        async def usage(headers: dict[str, str]) -> dict[str, Any]:
            async with http.get(stack + URL, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

        async def every_service_sampled_twice() -> bool:
            body = await usage(auth("viewer"))
            seen = {p["service"] for p in body["processes"] if len(p["series"]) >= 2}
            return seen >= SERVICES

        await wait_for(every_service_sampled_twice, timeout=60, what="samples of every service")
        body = await usage(auth("viewer"))
        for p in body["processes"]:
            assert p["latest"]["rssBytes"] > 10 * 2**20 and p["latest"]["cpuPct"] >= 0
        rss = {a["subject"]: a for a in body["alerts"] if a["kind"] == "process_rss"}
        assert {s.split(":")[0] for s in rss} >= SERVICES and all(
            a["breached"] for a in rss.values()
        )
        assert not any(a["breached"] for a in body["alerts"] if a["kind"] == "process_cpu")
        assert body["postgres"]["maxConnections"] > 0 and body["redis"]["usedMemory"] > 0
        assert body["thresholds"]["processRssMb"] == 1.0

        async def raised_for_every_service() -> bool:
            kinds = [e for e in await alert_events(redis) if e["kind"] == "process_rss"]
            return {e["message"].split(" ")[0].split(":")[0] for e in kinds} >= SERVICES

        await wait_for(raised_for_every_service, timeout=30, what="process_rss alerts")
        first = await usage(auth("viewer"))
        ticks_from = max(p["latest"]["ts"] for p in first["processes"])

        async def more_ticks() -> bool:
            body = await usage(auth("viewer"))
            newer = [p for p in body["processes"] if p["latest"]["ts"] > ticks_from]
            return len(newer) == len(body["processes"])

        await wait_for(more_ticks, timeout=30, what="further samples")
        raised = Counter(
            e["message"].split(" ")[0]
            for e in await alert_events(redis)
            if e["kind"] == "process_rss" and e["state"] == "raised"
        )
        assert raised and set(raised.values()) == {1}  # once per crossing, not per tick

        scoped = await usage(auth("viewer", ["alpha"]))
        assert scoped["processes"] is None and scoped["postgres"] is None
        assert [q["queue"] for q in scoped["queues"]] == ["alpha"]
