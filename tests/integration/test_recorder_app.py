"""The recorder's HTTP side: readiness follows Postgres, ``/lag`` reports the backlog."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg
from jobdeck.events import now_ms
from jobdeck.queues import JobSpec
from jobdeck.settings import Settings
from jobdeck.streams import EventStream
from jobdeck_recorder.app import build_app
from redis.asyncio import Redis

from tests.integration.test_recorder_consumer import FAST, _set_connections, job_events
from tests.support.processes import wait_for


async def test_readyz_goes_503_while_postgres_is_down_and_recovers(
    aiohttp_client: Any, settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    await _set_connections(settings.database_url, allowed=False)
    try:
        client = await aiohttp_client(build_app(settings, FAST))  # starts without postgres
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["checks"]["postgres"].startswith("failing")

        stream = EventStream(redis, 1_000_000)
        spec = JobSpec(queue="q", name="task")
        await stream.publish_many([spec.added_event(now_ms()), *job_events(spec.job_id)])

        async def behind() -> bool:
            resp = await client.get("/lag")
            return bool((await resp.json())["pending"] == 6)

        await wait_for(behind, what="entries held pending while postgres is down")
    finally:
        await _set_connections(settings.database_url, allowed=True)

    async def ready() -> bool:
        return bool((await client.get("/readyz")).status == 200)

    await wait_for(ready, what="readiness after postgres is back")

    async def caught_up() -> bool:
        body = await (await client.get("/lag")).json()
        return bool(body["behind"] == 0 and body["recorded"] == 6)

    await wait_for(caught_up, what="the recorder to catch up")
    assert await pg.fetchval("SELECT status FROM jobs WHERE id = $1", spec.job_id) == "completed"
    metrics = await (await client.get("/metrics")).text()
    assert 'jobdeck_recorder_events_total{type="completed"}' in metrics
    assert "jobdeck_recorder_lag 0.0" in metrics


async def test_lag_reports_the_backlog(
    aiohttp_client: Any, settings: Settings, redis: Redis
) -> None:
    await EventStream(redis, 1_000_000).publish_many(job_events("j1"))
    app = build_app(replace(settings, instance="rec-1"), FAST)
    client = await aiohttp_client(app)

    async def drained() -> bool:
        body = await (await client.get("/lag")).json()
        return bool(body["lag"] == 0 and body["pending"] == 0)

    await wait_for(drained, what="lag to reach 0")
    body = await (await client.get("/lag")).json()
    assert body["instance"] == "rec-1" and body["stream_length"] == 5
    assert body["consumers"] == 1
