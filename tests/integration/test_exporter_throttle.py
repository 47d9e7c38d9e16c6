"""Exports are throttled per caller (in flight and per hour: 429 with Retry-After), audited,
and refused up front (422) when the filters match more rows than one export may hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_api.app import build_app
from jobdeck_api.exports_api import ExportLimits
from jobdeck_api.security import RateLimits

from tests.support.api import auth, job_row, seed


@pytest.fixture
async def api_no_wait(api_settings: Settings) -> AsyncIterator[TestClient]:
    limits = ExportLimits(wait_s=0, in_flight=2, per_hour=3, max_rows=5)
    app = build_app(api_settings, RateLimits(enabled=False), export_limits=limits)
    async with TestClient(TestServer(app)) as client:
        yield client


async def post(api: TestClient, sub: str, **body: Any) -> tuple[int, Any, str | None]:
    resp = await api.post(
        "/api/v1/jobs/export", json={"format": "csv", **body}, headers=auth("viewer", sub=sub)
    )
    return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_in_flight_and_hourly_limits_per_caller(api_no_wait: TestClient, pg: Any) -> None:
    api = api_no_wait
    assert (await post(api, "ann"))[0] == 202  # no exporter running: it stays pending
    assert (await post(api, "ann"))[0] == 202
    status, problem, retry = await post(api, "ann")
    assert status == 429 and retry == "5", problem
    assert "still running" in problem["detail"]
    assert (await post(api, "bob"))[0] == 202  # another caller is not held back

    await pg.execute("UPDATE exports SET status = 'done' WHERE requested_by = 'ann'")
    assert (await post(api, "ann"))[0] == 202  # the third this hour
    await pg.execute("UPDATE exports SET status = 'done' WHERE requested_by = 'ann'")
    status, problem, retry = await post(api, "ann")
    assert status == 429 and retry is not None and 3500 < int(retry) <= 3600, problem

    audit = await pg.fetch(
        "SELECT outcome, detail FROM audit_log WHERE action = 'jobs.export' AND actor = 'ann'"
        " ORDER BY id"
    )
    assert [a["outcome"] for a in audit] == ["ok", "ok", "refused", "ok", "refused"]
    assert audit[0]["detail"]["format"] == "csv"


async def test_more_rows_than_the_limit_is_refused_up_front(
    api_no_wait: TestClient, pg: Any
) -> None:
    await seed(pg, [job_row(queue="big") for _ in range(6)] + [job_row(queue="small")])
    status, problem, _ = await post(api_no_wait, "ann", filters={"queues": ["big"]})
    assert status == 422 and problem["errors"][0]["name"] == "filters", problem
    assert "more than 5 jobs" in problem["detail"]
    status, info, _ = await post(api_no_wait, "ann", filters={"queues": ["small"]})
    assert status == 202 and info["rowsEstimated"] == 1 and info["status"] == "pending"
