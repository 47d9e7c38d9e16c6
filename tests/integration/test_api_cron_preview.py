"""GET /api/v1/jobs/schedules/preview: the schedule form's live check, nothing stored."""

from __future__ import annotations

from datetime import datetime

from aiohttp.test_utils import TestClient

from tests.support.api import auth

URL = "/api/v1/jobs/schedules/preview"


async def test_preview_describes_and_lists_the_next_runs_in_the_zone(api: TestClient) -> None:
    resp = await api.get(
        URL,
        params={"cronExpression": "30 2 * * *", "timezone": "Europe/Berlin", "count": "3"},
        headers=auth("viewer"),
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["timezone"] == "Europe/Berlin"
    assert "Europe/Berlin" in body["description"]
    assert len(body["nextRuns"]) == 3
    for run in body["nextRuns"]:
        local = datetime.fromisoformat(run["local"])
        assert (local.hour, local.minute) == (2, 30) or local.hour == 3  # spring-forward day
        assert datetime.fromisoformat(run["at"]) == local
    ats = [datetime.fromisoformat(r["at"]) for r in body["nextRuns"]]
    assert ats == sorted(ats) and len(set(ats)) == 3


async def test_bad_expressions_and_zones_are_422_naming_the_field(api: TestClient) -> None:
    cases = [
        ({"cronExpression": "61 * * * *"}, "cronExpression"),
        ({"cronExpression": "0 0 31 2 *"}, "cronExpression"),
        ({"cronExpression": "0 2 * * *", "timezone": "Mars/Base"}, "timezone"),
        ({"cronExpression": "0 2 * * *", "count": "0"}, "count"),
        ({}, "cronExpression"),
    ]
    for params, field in cases:
        resp = await api.get(URL, params=params, headers=auth("viewer"))
        body = await resp.json()
        assert resp.status == 422, (params, body)
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert body["errors"][0]["name"] == field, (params, body)
        assert body["errors"][0]["reason"]


async def test_preview_needs_a_token(api: TestClient) -> None:
    resp = await api.get(URL, params={"cronExpression": "@hourly"})
    assert resp.status == 401
