"""Values that parse but don't fit (far dates, forged cursors) are 422s naming the parameter."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jobdeck.filters import SortOrder
from jobdeck_api.search import sort_fingerprint

from tests.support.api import auth, job_row, seed


async def problem(resp: Any, status: int = 422) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json()
    assert resp.status == status, body
    assert resp.content_type == "application/problem+json"
    return body


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("endDate", "9999-12-31"),
        ("endDate", "9999-12-31T23:59:59.999999"),
        ("startDate", "0001-01-01T00:00:00+05:00"),
        ("startDate", "1969-12-31"),
    ],
)
async def test_search_dates_out_of_range(api: TestClient, param: str, value: str) -> None:
    resp = await api.get("/api/v1/jobs/search", params={param: value}, headers=auth())
    body = await problem(resp)
    assert any(e["name"] == param and "out of range" in e["reason"] for e in body["errors"])


async def test_audit_until_out_of_range(api: TestClient) -> None:
    resp = await api.get("/api/v1/audit", params={"until": "9999-12-31"}, headers=auth("admin"))
    await problem(resp)


@pytest.mark.parametrize("run_at", ["9999-12-31", "0001-01-01T00:00:00+05:00", "2200-01-01"])
async def test_enqueue_run_at_out_of_range(api: TestClient, run_at: str) -> None:
    resp = await api.post(
        "/api/v1/jobs",
        json={"queue": "q", "name": "noop", "runAt": run_at},
        headers=auth("operator"),
    )
    body = await problem(resp)
    assert "runAt" in body["detail"]


def forged(columns: list[tuple[str, str]], values: list[Any], job_id: str = "x") -> str:
    sort = [(c, SortOrder(o), False, "") for c, o in columns]
    payload = {"s": sort_fingerprint(sort), "k": values, "id": job_id}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort_by", "values", "job_id"),
    [
        ("priority", [2**40], "x"),
        ("priority", [10**30], "x"),
        ("duration", [10**30], "x"),
        ("name", ["a\u0000"], "x"),
        ("name", ["\ud800"], "x"),
        ("name", ["a"], "x\u0000"),
        ("createdAt", ["0001-01-01T00:00:00+05:00"], "x"),
    ],
)
async def test_forged_cursors_are_refused(
    api: TestClient, pg: Any, sort_by: str, values: list[Any], job_id: str
) -> None:
    await seed(pg, [job_row(), job_row()])
    column = {
        "priority": "priority",
        "duration": "duration_ms",
        "name": "name",
        "createdAt": "created_at",
    }[sort_by]
    cursor = forged([(column, "desc")], values, job_id)
    resp = await api.get(
        "/api/v1/jobs/search",
        params={"sortBy": sort_by, "sortOrder": "desc", "cursor": cursor},
        headers=auth(),
    )
    body = await problem(resp)
    assert body["errors"][0]["name"] == "cursor"
