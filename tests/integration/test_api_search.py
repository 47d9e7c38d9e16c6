"""Search over real Postgres: every filter, every sort field, both paginations, cursor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.api import BASE, auth, job_row, seed

SEARCH = "/api/v1/jobs/search"


async def get(api: TestClient, query: str | dict[str, Any], **kw: Any) -> Any:
    resp = await api.get(SEARCH, params=query, headers=kw.pop("headers", auth()))
    body = await resp.json()
    assert resp.status == kw.get("status", 200), body
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [j["id"] for j in body["items"]]


@pytest.fixture
async def mixed(pg: Any) -> list[dict[str, Any]]:
    """A varied set: statuses, queues, names, priorities, durations, times."""
    rows = []
    statuses = ["waiting", "delayed", "active", "completed", "failed", "cancelled"]
    queues = ["price-file-parser", "emails", "reports"]
    names = ["price-file-parser", "send-email", "build-report", "price_update"]
    for i in range(60):
        rows.append(
            job_row(
                status=statuses[i % 6],
                queue=queues[i % 3],
                name=names[i % 4],
                priority=(i * 7) % 11,
                created_at=BASE + timedelta(days=i % 10, minutes=i),
                duration_ms=100 * ((i * 13) % 17) + 5,
                attempts=i % 4,
            )
        )
    return await seed(pg, rows)


async def test_seed_example_verbatim(api: TestClient, mixed: list[dict[str, Any]]) -> None:
    resp = await api.get(
        "/api/v1/jobs/search?search=price&status[]=completed&status[]=failed"
        "&queues[]=price-file-parser&startDate=2024-01-01&sortBy=duration&sortOrder=desc"
        "&page=1&limit=20",
        headers=auth(),
    )
    body = await resp.json()
    assert resp.status == 200, body
    expected = sorted(
        (
            r
            for r in mixed
            if "price" in r["name"]
            and r["status"] in ("completed", "failed")
            and r["queue"] == "price-file-parser"
        ),
        key=lambda r: (r["duration_ms"], r["id"]),
        reverse=True,
    )
    assert expected, "fixture must contain matches"
    assert ids(body) == [r["id"] for r in expected][:20]
    assert body["total"] == len(expected) and body["totalExact"] is True
    assert body["page"] == 1 and body["limit"] == 20
    item = body["items"][0]
    assert {"jobName", "createdAt", "duration", "status", "queue"} <= item.keys()
    assert item["data"] is None  # includeData defaults to false


@pytest.mark.parametrize(
    ("query", "predicate"),
    [
        ({"search": "EMAIL"}, lambda r: "email" in r["name"]),
        ({"search": "price_"}, lambda r: "price_" in r["name"]),  # '_' is literal
        ({"status": "failed"}, lambda r: r["status"] == "failed"),
        ({"status[]": ["failed", "active"]}, lambda r: r["status"] in ("failed", "active")),
        ({"status": "waiting,delayed"}, lambda r: r["status"] in ("waiting", "delayed")),
        ({"queues": "emails"}, lambda r: r["queue"] == "emails"),
        ({"queues[]": ["emails", "reports"]}, lambda r: r["queue"] in ("emails", "reports")),
        ({"startDate": "2024-03-05"}, lambda r: r["created_at"] >= BASE + timedelta(days=4)),
        ({"endDate": "2024-03-03"}, lambda r: r["created_at"] < BASE + timedelta(days=3)),
        (
            {"startDate": "2024-03-02T00:00:00Z", "endDate": "2024-03-02T12:00:00+00:00"},
            lambda r: BASE + timedelta(days=1) <= r["created_at"] <= BASE + timedelta(days=1.5),
        ),
        (
            {"startDate": "2024-03-05", "dateField": "finishedAt"},
            lambda r: r["finished_at"] is not None and r["finished_at"] >= BASE + timedelta(days=4),
        ),
        (
            {"endDate": "2024-03-05", "dateField": "startedAt"},
            lambda r: r["started_at"] is not None and r["started_at"] < BASE + timedelta(days=5),
        ),
        (
            {"minDuration": "500"},
            lambda r: r["duration_ms"] is not None and r["duration_ms"] >= 500,
        ),
        (
            {"maxDuration": "500"},
            lambda r: r["duration_ms"] is not None and r["duration_ms"] <= 500,
        ),
        ({"priority": "3"}, lambda r: r["priority"] == 3),
        ({"minPriority": "4", "maxPriority": "6"}, lambda r: 4 <= r["priority"] <= 6),
    ],
)
async def test_each_filter(
    api: TestClient, mixed: list[dict[str, Any]], query: dict[str, Any], predicate: Any
) -> None:
    body = await get(api, {**query, "limit": "200"})
    expected = {r["id"] for r in mixed if predicate(r)}
    assert expected, "fixture must contain matches"
    assert set(ids(body)) == expected
    assert body["total"] == len(expected)


async def test_search_by_exact_id(api: TestClient, mixed: list[dict[str, Any]]) -> None:
    target = mixed[17]["id"]
    body = await get(api, {"search": target})
    assert ids(body) == [target]


SORTS = {
    "createdAt": "created_at",
    "startedAt": "started_at",
    "finishedAt": "finished_at",
    "duration": "duration_ms",
    "priority": "priority",
    "status": "status",
    "name": "name",
    "queue": "queue",
    "attempts": "attempts",
}


def expected_order(rows: list[dict[str, Any]], keys: list[tuple[str, str]]) -> list[str]:
    """Python's version of the API's order: NULL is the lowest value (last when
    descending, first when ascending), id the final tie-break."""
    ordered = sorted(rows, key=lambda r: r["id"], reverse=keys[-1][1] == "desc")
    for column, order in reversed(keys):
        present = [r for r in ordered if r[column] is not None]
        missing = [r for r in ordered if r[column] is None]
        present.sort(key=lambda r: r[column], reverse=order == "desc")
        ordered = present + missing if order == "desc" else missing + present
    return [r["id"] for r in ordered]


@pytest.mark.parametrize("field", list(SORTS))
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_each_sort_field(
    api: TestClient, mixed: list[dict[str, Any]], field: str, order: str
) -> None:
    body = await get(api, {"sortBy": field, "sortOrder": order, "limit": "200"})
    assert ids(body) == expected_order(mixed, [(SORTS[field], order)])


async def test_multi_field_sort_with_orders(api: TestClient, mixed: list[dict[str, Any]]) -> None:
    body = await get(api, {"sortBy": "status,duration", "sortOrder": "asc,desc", "limit": "200"})
    assert ids(body) == expected_order(mixed, [("status", "asc"), ("duration_ms", "desc")])


async def test_page_and_offset_pagination(api: TestClient, mixed: list[dict[str, Any]]) -> None:
    everything = ids(await get(api, {"limit": "200", "sortBy": "priority"}))
    page2 = await get(api, {"page": "2", "limit": "7", "sortBy": "priority"})
    assert ids(page2) == everything[7:14]
    assert page2["page"] == 2 and page2["offset"] == 7 and page2["total"] == len(mixed)
    off = await get(api, {"offset": "10", "limit": "5", "sortBy": "priority"})
    assert ids(off) == everything[10:15]
    last = await get(api, {"page": "9", "limit": "7", "sortBy": "priority"})
    assert ids(last) == everything[56:] and last["nextCursor"] is None
    beyond = await get(api, {"page": "100", "limit": "7"})
    assert beyond["items"] == [] and beyond["total"] == len(mixed)


@pytest.mark.parametrize(
    ("sort_by", "sort_order"),
    [
        ("createdAt", "desc"),
        ("createdAt", "asc"),
        ("duration", "desc"),
        ("finishedAt", "asc"),
        ("status,startedAt", "asc,desc"),
        ("queue,priority", "desc"),
    ],
)
async def test_cursor_walks_every_row_once(
    api: TestClient, mixed: list[dict[str, Any]], sort_by: str, sort_order: str
) -> None:
    everything = ids(await get(api, {"limit": "200", "sortBy": sort_by, "sortOrder": sort_order}))
    seen: list[str] = []
    query: dict[str, Any] = {"limit": "8", "sortBy": sort_by, "sortOrder": sort_order}
    for _ in range(20):
        body = await get(api, query)
        seen += ids(body)
        if body["nextCursor"] is None:
            break
        query["cursor"] = body["nextCursor"]
    assert seen == everything


async def test_cursor_from_another_sort_is_refused(
    api: TestClient, mixed: list[dict[str, Any]]
) -> None:
    body = await get(api, {"limit": "5", "sortBy": "priority"})
    bad = await get(
        api, {"cursor": body["nextCursor"], "sortBy": "duration", "limit": "5"}, status=422
    )
    assert "cursor" in bad["detail"]
    await get(api, {"cursor": "not-a-cursor!!"}, status=422)


async def test_include_data(api: TestClient, mixed: list[dict[str, Any]]) -> None:
    body = await get(api, {"includeData": "true", "status": "completed", "limit": "1"})
    item = body["items"][0]
    assert item["data"] == {"n": int(item["data"]["n"])} and item["result"] == {"ok": True}
    assert item["options"]["backoff_ms"] == 1000


async def test_total_is_capped_then_estimated(
    api: TestClient, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobdeck_api import search

    await seed(pg, [job_row() for _ in range(40)])
    monkeypatch.setattr(search, "COUNT_CAP", 10)
    monkeypatch.setattr(search, "ESTIMATE_TRUSTED", 1000)
    body = await get(api, {"limit": "5"})  # counted up to the cap, then estimated
    assert body["totalExact"] is False and body["total"] >= 11
    monkeypatch.setattr(search, "ESTIMATE_TRUSTED", 5)
    body = await get(api, {"limit": "5"})  # the estimate alone
    assert body["totalExact"] is False and body["total"] >= 6
    monkeypatch.setattr(search, "ESTIMATE_TRUSTED", 1000)
    monkeypatch.setattr(search, "COUNT_BUDGET_S", 0)
    body = await get(api, {"limit": "5"})  # counting over budget: the estimate
    assert body["totalExact"] is False
    body = await get(api, {"limit": "5", "page": "2"})  # and the connection still works
    assert len(body["items"]) == 5
    exact = await get(api, {"limit": "5", "exactTotal": "true"})
    assert exact["totalExact"] is True and exact["total"] == 40


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"status": "bogus"}, "status"),
        ({"sortBy": "color"}, "sortBy"),
        ({"limit": "100000"}, "limit"),
        ({"startDate": "yesterday"}, "startDate"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"sortOrder": "up"}, "sortOrder"),
        ({"minDuration": "9", "maxDuration": "1"}, "minDuration"),
        ({"page": "2", "offset": "3"}, "page"),
        ({"limit": "5", "limit[]": "6"}, "limit"),
        ({"colour": "red"}, "colour"),
        ({"includeData": "maybe"}, "includeData"),
    ],
)
async def test_bad_parameters_are_422_naming_the_parameter(
    api: TestClient, query: dict[str, str], names: str
) -> None:
    body = await get(api, query, status=422)
    assert body["status"] == 422 and names in body["detail"]
    assert body["title"] == "Unprocessable Content" or body["title"]


async def test_results_limited_to_token_queues(
    api: TestClient, mixed: list[dict[str, Any]]
) -> None:
    headers = auth("viewer", ["emails"])
    body = await get(api, {"limit": "200"}, headers=headers)
    assert {j["queue"] for j in body["items"]} == {"emails"}
    asked = await get(api, {"queues": "reports", "limit": "200"}, headers=headers)
    assert asked["items"] == [] and asked["total"] == 0


async def test_count_past_its_budget_is_abandoned(pg: Any) -> None:
    from dataclasses import replace

    from jobdeck_api.search import plan_search
    from jobdeck_api.search_count import budgeted_count
    from jobdeck_api.search_models import SearchQuery

    plan = plan_search(SearchQuery.model_validate({}), None)
    slow = replace(plan, count_sql="SELECT count(*) FROM pg_sleep(2)", count_args=[])
    async with pg.acquire() as conn:
        assert await budgeted_count(conn, replace(slow, count_budget_s=0.05)) is None
        assert await budgeted_count(conn, replace(plan, count_budget_s=5)) == 0
        assert await conn.fetchval("SHOW statement_timeout") == "0"  # only for that count
