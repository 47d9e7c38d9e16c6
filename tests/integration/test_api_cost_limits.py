"""Cost limits of the API on real Postgres: no request may pin the pool.

Deep pages and short substrings are refused before any SQL runs; a search the planner
prices too high is refused with advice; exactTotal is bounded; costly searches share a
few slots; every statement runs under a timeout answered with a 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_api.app import build_app
from jobdeck_api.limits import CostLimits
from jobdeck_api.search_head import PRIMARY_KEY, SORT_INDEXES
from jobdeck_api.security import RateLimits

from tests.support.api import auth
from tests.support.processes import wait_for

SEARCH = "/api/v1/jobs/search"
DAY = timedelta(days=1)
# One job in 100 is on the queue "small"; the rest spread over q0, q1, q2.
SEED = """
INSERT INTO jobs (id, queue, name, status, priority, attempts, max_attempts, created_at,
                  started_at, finished_at, duration_ms)
SELECT 'j' || n, CASE WHEN n % 100 = 0 THEN 'small' ELSE 'q' || (n % 3) END,
       'task-' || (n % 50), (ARRAY['completed', 'failed', 'cancelled', 'waiting'])[1 + n % 4],
       n % 10, n % 4, 3, now() - make_interval(secs => n),
       now() - make_interval(secs => n) + interval '1 second',
       now() - make_interval(secs => n) + interval '2 seconds', n % 1000
FROM generate_series(1, $1::int) n
"""


async def seed_jobs(pg: asyncpg.Pool, n: int) -> None:
    await pg.execute(SEED, n)
    await pg.execute("ANALYZE jobs")


@pytest.fixture
def limits() -> CostLimits:
    return CostLimits()


@pytest.fixture
async def api(settings: Settings, limits: CostLimits) -> AsyncIterator[TestClient]:
    from tests.support.api import SECRET

    app = build_app(replace(settings, jwt_secret=SECRET), RateLimits(enabled=False), limits=limits)
    async with TestClient(TestServer(app)) as client:
        yield client


async def search(api: TestClient, params: dict[str, Any]) -> tuple[int, Any, Any]:
    resp = await api.get(SEARCH, params=params, headers=auth("viewer"))
    return resp.status, await resp.json(), resp.headers


async def test_deep_pages_and_short_substrings_are_refused_pointing_to_what_works(
    api: TestClient,
) -> None:
    for params, name in [
        ({"offset": "10001"}, "offset"),
        ({"page": "502", "limit": "20"}, "page"),
        ({"page": "10002", "limit": "1"}, "page"),
        ({"search": "ab"}, "search"),
        ({"search": "  x  "}, "search"),
    ]:
        status, body, _ = await search(api, params)
        assert status == 422, (params, body)
        assert body["detail"].count(f"{name}:") >= 1, body
        assert ("nextCursor" in body["detail"]) == (name != "search"), body
    assert (await search(api, {"page": "501", "limit": "20"}))[0] == 200  # row 10,000: served
    assert (await search(api, {"search": "abc"}))[0] == 200


@pytest.mark.parametrize("limits", [CostLimits(refuse_cost=100)])
async def test_a_search_that_must_sort_its_matches_is_refused_and_the_advice_works(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await seed_jobs(pg, 3_000)
    status, body, _ = await search(api, {"sortBy": "attempts"})
    assert status == 422, body
    assert body["errors"][0]["name"] == "sortBy"
    assert "sort by createdAt" in body["detail"] and "narrow it with queues" in body["detail"]
    # Both ways out the refusal names are served: by creation time, or a narrower match.
    assert (await search(api, {"sortBy": "createdAt"}))[0] == 200
    status, body, _ = await search(api, {"sortBy": "attempts", "queues": "small"})
    assert status == 200, body
    attempts = [j["attempts"] for j in body["items"]]
    assert attempts == sorted(attempts, reverse=True) and len(attempts) == 20


@pytest.mark.parametrize("limits", [CostLimits(exact_total_max=500)])
async def test_exact_total_is_refused_past_its_bound_and_exact_below_it(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await seed_jobs(pg, 3_000)
    status, body, _ = await search(api, {"exactTotal": "true"})
    assert status == 422 and body["errors"][0]["name"] == "exactTotal", body
    assert "about 3,000 jobs match" in body["detail"] and "500" in body["detail"]
    status, body, _ = await search(api, {"exactTotal": "true", "queues": "small", "limit": "5"})
    assert status == 200, body
    assert (body["total"], body["totalExact"]) == (30, True)


@pytest.mark.parametrize("limits", [CostLimits(statement_timeout_ms=300)])
async def test_a_statement_past_the_timeout_is_a_503_with_a_hint_and_frees_its_connection(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await seed_jobs(pg, 100)
    async with pg.acquire() as blocker, blocker.transaction():
        # Whatever holds the table (a long migration, a runaway query) stalls every read.
        await blocker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        for path in (SEARCH + "?sortBy=duration", SEARCH, "/api/v1/jobs/j1"):
            resp = await api.get(path, headers=auth("viewer"))
            body = await resp.json()
            assert resp.status == 503, (path, body)
            assert resp.content_type == "application/problem+json"
            assert "statement timeout (300 ms)" in body["detail"]
            assert "narrow the filters" in body["detail"]
            assert resp.headers["Retry-After"] == "1"
        health = await api.get("/healthz")
        assert health.status == 200
    # Nothing of the API is left waiting in Postgres, and its pool serves again.
    stuck = await pg.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND pid <> pg_backend_pid()"
    )
    assert stuck == 0
    status, body, _ = await search(api, {"sortBy": "duration"})
    assert status == 200 and len(body["items"]) == 20


@pytest.mark.parametrize(
    "limits", [CostLimits(heavy_slots=1, heavy_wait_ms=100, statement_timeout_ms=10_000)]
)
async def test_costly_searches_wait_for_a_slot_then_get_a_503_while_cheap_ones_pass(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await seed_jobs(pg, 100)
    async with pg.acquire() as blocker:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        # The first exact count takes the only slot and waits for the table.
        first = asyncio.create_task(search(api, {"exactTotal": "true"}))
        await wait_for(lambda: _waiting_on_lock(pg), timeout=10, what="the count to be blocked")
        status, body, headers = await search(api, {"exactTotal": "true", "queues": "q1"})
        assert status == 503, body
        assert "costly searches are already running" in body["detail"]
        assert headers["Retry-After"] == "1"
        assert (await api.get("/healthz")).status == 200
        await tx.rollback()
    status, body, _ = await first
    assert status == 200 and body["totalExact"] is True and body["total"] == 100


async def _waiting_on_lock(pg: asyncpg.Pool) -> bool:
    waiting = await pg.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    return bool(waiting)


# Worst cases of every kind: counting everything, sorting everything by an unindexed field,
# a common substring sorted by name, the deepest page allowed sorted by priority.
WORST = [
    {"exactTotal": "true", "sortBy": "attempts"},
    {"sortBy": "name", "sortOrder": "asc", "search": "task"},
    {"offset": "10000", "sortBy": "priority"},
    {"sortBy": "status,attempts", "exactTotal": "true", "search": "ask-1"},
]


@pytest.mark.parametrize(
    "limits",
    [CostLimits(heavy_slots=3, heavy_wait_ms=30_000, heavy_cost=0, statement_timeout_ms=30_000)],
)
async def test_twenty_worst_case_searches_at_once_leave_health_and_cheap_searches_answering(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await seed_jobs(pg, 30_000)
    running: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        # Statements of the costly searches running at once (EXPLAIN is their cheap pricing).
        while not done.is_set():
            running.append(
                await pg.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'active' AND pid <> pg_backend_pid()"
                    " AND query NOT LIKE 'EXPLAIN%' AND query NOT LIKE '%ORDER BY created_at%'"
                )
            )
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    storm = [asyncio.create_task(search(api, WORST[i % len(WORST)])) for i in range(20)]
    await wait_for(
        lambda: _storm_on(running, storm), timeout=10, what="the storm to reach Postgres"
    )
    started = time.monotonic()
    health = await api.get("/healthz")
    # One queue, one status, by creation time: an index range; its last page tells its total.
    cheap_status, cheap, _ = await search(
        api, {"queues": "small", "status": "completed", "offset": "200", "limit": "200"}
    )
    elapsed = time.monotonic() - started
    results = await asyncio.gather(*storm)
    done.set()
    await sampler
    assert health.status == 200 and cheap_status == 200 and len(cheap["items"]) == 100
    assert elapsed < 1.0, f"health and a cheap search took {elapsed:.2f}s during the storm"
    assert [status for status, _, _ in results] == [200] * 20, [b for _, b, _ in results]
    assert max(running) <= 3  # never more costly statements at once than the lane's slots


async def _storm_on(running: list[int], storm: list[asyncio.Task[Any]]) -> bool:
    return any(running) or all(t.done() for t in storm)


# Half the jobs never started (NULL start time, first in ascending order): failed ones
# started, waiting ones did not. The planner expects failed jobs evenly along the
# start-time index and prices "failed by startedAt ascending" at nothing.
HALF_UNSTARTED = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at)"
    " SELECT 'j' || n, 'q', 't', CASE WHEN n % 2 = 0 THEN 'failed' ELSE 'waiting' END,"
    " now() - make_interval(secs => n),"
    " CASE WHEN n % 2 = 0 THEN now() - make_interval(secs => n) END"
    " FROM generate_series(1, 40000) n"
)


# (the statistics' walk rule off: the budget is the backstop for what they do not show)
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=1, walk_max_rows=10**9)])
async def test_a_page_the_planner_misjudged_is_cancelled_at_its_budget_and_refused(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(HALF_UNSTARTED)
    await pg.execute("ANALYZE jobs")
    status, body, _ = await search(
        api, {"status": "failed", "sortBy": "startedAt", "sortOrder": "asc"}
    )
    assert status == 422, body
    assert body["errors"][0]["name"] == "sortBy"
    assert "not found within 1 ms" in body["detail"] and "sort by createdAt" in body["detail"]
    status, body, _ = await search(api, {"status": "failed", "sortOrder": "asc"})
    assert status == 200 and len(body["items"]) == 20


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_stuck_behind_jobs_lacking_its_sort_value_is_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(HALF_UNSTARTED)
    await pg.execute("ANALYZE jobs")  # the joint statistics of status and missing times
    asc = {"sortBy": "startedAt", "sortOrder": "asc"}
    status, body, _ = await search(api, {"status": "failed", **asc})
    assert status == 422, body
    assert body["errors"] == [
        {"in": "query", "name": "sortBy", "reason": "too costly to serve; see detail"}
    ]
    detail = body["detail"]
    assert "sorted by startedAt ascending" in detail and "jobs without a startedAt" in detail
    assert "sortOrder=desc" in detail and "dateField=startedAt" in detail
    # Waiting jobs all lack a start time: descending, every started job comes first.
    status, body, _ = await search(api, {"status": "waiting", "sortBy": "startedAt"})
    assert status == 422 and "jobs with a startedAt come first" in body["detail"], body
    # The advice works: the other order, or a range on the start time.
    for params in (
        {"status": "failed", "sortBy": "startedAt", "sortOrder": "desc"},
        {"status": "failed", "startDate": "2020-01-01", "dateField": "startedAt", **asc},
        {"status": "waiting", **asc},  # every match is in the block walked first
    ):
        status, body, _ = await search(api, params)
        assert status == 200 and len(body["items"]) == 20, (params, body)


# 36,000 jobs of the queue "old" over the last nine days, then 4,000 of "new" in the last
# minute: sorted by a time ascending, every job of "old" comes before the first of "new".
SKEWED = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at,"
    " duration_ms)"
    " SELECT 'j' || n, CASE WHEN n <= 4000 THEN 'new' ELSE 'old' END, 't', 'completed', t,"
    " t + interval '1 second', t + interval '2 seconds', 1000"
    " FROM generate_series(1, 40000) n,"
    " LATERAL (SELECT now() - CASE WHEN n <= 4000 THEN make_interval(secs => n / 100.0)"
    " ELSE make_interval(secs => n * 20) END AS t) ts"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_stuck_behind_other_queues_in_its_sort_order_is_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(SKEWED)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    for field in ("finishedAt", "startedAt"):
        status, body, _ = await search(api, {"queues": "new", "sortBy": field, "sortOrder": "asc"})
        assert status == 422, (field, body)
        assert body["errors"][0]["name"] == "sortBy"
        detail = body["detail"]
        assert f"sorted by {field} ascending" in detail and "jobs of other queues" in detail
        assert f"dateField={field}" in detail, detail
        # The advice works: from the queue's first creation time on, the walk starts there.
        start = detail.split("startDate=")[1].split(" ")[0]
        status, body, _ = await search(
            api,
            {
                "queues": "new",
                "sortBy": field,
                "sortOrder": "asc",
                "startDate": start,
                "dateField": field,
            },
        )
        assert status == 200 and len(body["items"]) == 20, (field, body)
        assert {item["queue"] for item in body["items"]} == {"new"}
    # The old queue ascending, the new one descending: their matches come first.
    for params in (
        {"queues": "old", "sortBy": "finishedAt", "sortOrder": "asc"},
        {"queues": "new", "sortBy": "finishedAt", "sortOrder": "desc"},
    ):
        status, body, _ = await search(api, params)
        assert status == 200 and len(body["items"]) == 20, (params, body)


# 4,000 jobs of the name "legacy-sync" nine days ago, in queues shared with 36,000 jobs of
# other names since: sorted by a time descending, every newer job comes before the first
# of "legacy-sync"; ascending, the name "fresh-sync" (the newest 4,000) comes after them.
RETIRED = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at,"
    " duration_ms)"
    " SELECT 'j' || n, 'q' || (n % 3),"
    " CASE WHEN n > 36000 THEN 'legacy-sync' WHEN n <= 4000 THEN 'fresh-sync' ELSE 'task' END,"
    " 'completed', t, t + interval '1 second', t + interval '2 seconds', 1000"
    " FROM generate_series(1, 40000) n,"
    " LATERAL (SELECT now() - make_interval(secs => CASE WHEN n > 36000 THEN 800000 ELSE n END"
    " + n / 100.0) AS t) ts"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_stuck_behind_other_job_names_in_its_sort_order_is_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(RETIRED)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    for field, order, name in (
        ("finishedAt", "desc", "legacy-sync"),
        ("startedAt", "desc", "legacy-sync"),
        ("createdAt", "desc", "legacy-sync"),
        ("finishedAt", "asc", "fresh-sync"),
    ):
        params = {"search": name, "sortBy": field, "sortOrder": order}
        status, body, _ = await search(api, params)
        assert status == 422, (params, body)
        # The default sort is not at fault: the search is.
        assert body["errors"][0]["name"] == ("search" if field == "createdAt" else "sortBy")
        detail = body["detail"]
        assert "jobs of other queues or names" in detail and f"dateField={field}" in detail
        # The advice works: the range on the sort column starts where the name's jobs are.
        bound = "endDate" if order == "desc" else "startDate"
        edge = detail.split(f"{bound}=")[1].split(" ")[0]
        status, body, _ = await search(api, {**params, bound: edge, "dateField": field})
        assert status == 200 and len(body["items"]) == 20, (params, body)
        assert {item["jobName"] for item in body["items"]} == {name}
    # Each name in the order its jobs come first in is served.
    for params in (
        {"search": "legacy-sync", "sortBy": "finishedAt", "sortOrder": "asc"},
        {"search": "fresh-sync", "sortBy": "startedAt", "sortOrder": "desc"},
    ):
        status, body, _ = await search(api, params)
        assert status == 200 and len(body["items"]) == 20, (params, body)


# 20,000 waiting jobs of the queue "busy" (no start or finish time: first when ascending),
# and 2,000 completed ones of "done": the statistics take "done" to hold its share of them.
DRAINED = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at)"
    " SELECT 'j' || n, CASE WHEN n <= 2000 THEN 'done' ELSE 'busy' END,"
    " CASE WHEN n <= 2000 THEN 'done-task' ELSE 'busy-task' END,"
    " CASE WHEN n <= 2000 THEN 'completed' ELSE 'waiting' END, now() - make_interval(secs => n),"
    " CASE WHEN n <= 2000 THEN now() END, CASE WHEN n <= 2000 THEN now() END"
    " FROM generate_series(1, 22000) n"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_queue_or_name_none_of_whose_jobs_lacks_the_sort_value_is_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(DRAINED)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    for field in ("finishedAt", "startedAt"):
        for which in ({"queues": "done"}, {"search": "done-task"}):
            params = {**which, "sortBy": field, "sortOrder": "asc"}
            status, body, _ = await search(api, params)
            assert status == 422, (params, body)
            assert f"jobs without a {field} come first" in body["detail"], body
    # One waiting job of "done", first in the block (which runs in id order): a page of
    # one is served at once; a page of 20 still walks the whole block for the other 19.
    await pg.execute(
        "INSERT INTO jobs (id, queue, name, status, created_at) VALUES ('a-late', 'done',"
        " 'done-task', 'waiting', now())"
    )
    for which in ({"queues": "done"}, {"search": "done-task"}):
        params = {**which, "sortBy": "finishedAt", "sortOrder": "asc"}
        status, body, _ = await search(api, {**params, "limit": 1})
        assert status == 200 and body["items"][0]["id"] == "a-late", body
        status, body, _ = await search(api, params)
        assert status == 422, body
        assert "fewer than a page of the first 1,000 jobs in that order match" in body["detail"], (
            body
        )


# 36,000 jobs of "task" lasting 0 to 36 s, 4,000 of "ping" lasting 5 ms: sorted by
# duration descending, every longer job comes before the first "ping".
FAST = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at,"
    " duration_ms)"
    " SELECT 'j' || n, 'q', CASE WHEN n <= 4000 THEN 'ping' ELSE 'task' END, 'completed',"
    " now() - make_interval(secs => n), now(), now(), CASE WHEN n <= 4000 THEN 5 ELSE n END"
    " FROM generate_series(1, 40000) n"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_stuck_behind_longer_jobs_is_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(FAST)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    desc = {"search": "ping", "sortBy": "duration", "sortOrder": "desc"}
    status, body, _ = await search(api, desc)
    assert status == 422, body
    assert "with a duration above 8 ms, longer than any of the jobs searched" in body["detail"]
    # The advice works, and the shortest first is served as it is.
    for params in ({**desc, "maxDuration": 8}, {**desc, "sortOrder": "asc"}):
        status, body, _ = await search(api, params)
        assert status == 200 and len(body["items"]) == 20, (params, body["detail"])
        assert {item["jobName"] for item in body["items"]} == {"ping"}


# 40,000 jobs of one queue, one created every 20 s over nine days, each started a second
# and finished two seconds after it was created.
STEADY = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at,"
    " duration_ms)"
    " SELECT 'j' || n, 'q', 't', 'completed', t, t + interval '1 second',"
    " t + interval '2 seconds', 1000"
    " FROM generate_series(1, 40000) n,"
    " LATERAL (SELECT now() - make_interval(secs => n * 20) AS t) ts"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_range_of_one_time_sorted_by_another_is_bounded_or_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(STEADY)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    oldest, newest = await pg.fetchrow("SELECT min(created_at), max(created_at) FROM jobs")
    old_day = {"startDate": oldest.isoformat(), "endDate": (oldest + DAY).isoformat()}
    new_day = {"startDate": (newest - DAY).isoformat(), "endDate": newest.isoformat()}
    # Created on the oldest day, sorted by a later time descending: every job started or
    # finished since comes first.
    for field in ("startedAt", "finishedAt"):
        status, body, _ = await search(api, {**old_day, "sortBy": field})
        assert status == 422, (field, body)
        detail = body["detail"]
        assert "the ~" in detail and f"jobs with a {field} after" in detail, detail
        assert "none of them has a createdAt within startDate/endDate" in detail, detail
        # The advice works: sorted by the time the range is on, the walk starts there.
        assert "instead sortBy=createdAt, the time the range is on" in detail, detail
        status, body, _ = await search(api, {**old_day, "sortBy": "createdAt"})
        assert status == 200 and len(body["items"]) == 20, body
    # The range where the walk starts: served.
    status, body, _ = await search(api, {**new_day, "sortBy": "startedAt"})
    assert status == 200 and len(body["items"]) == 20, body

    # A range of startedAt or finishedAt sorted by createdAt: the jobs were created within
    # the range widened by the lag, where the page's walk starts. Served, and exact.
    async def matches_first_page(params: dict[str, Any]) -> list[str]:
        status, body, _ = await search(api, params)
        assert status == 200, (params, body)
        column = {"startedAt": "started_at", "finishedAt": "finished_at"}[params["dateField"]]
        order = "ASC" if params.get("sortOrder") == "asc" else "DESC"
        expected = await pg.fetch(
            f"SELECT id FROM jobs WHERE {column} >= $1 AND {column} < $2"
            f" ORDER BY created_at {order}, id {order} LIMIT 20",
            datetime.fromisoformat(params["startDate"]),
            datetime.fromisoformat(params["endDate"]),
        )
        ids = [item["id"] for item in body["items"]]
        assert len(ids) == 20 and ids == [r["id"] for r in expected], params
        return ids

    for params in (
        {**new_day, "dateField": "startedAt", "sortOrder": "asc"},
        {**old_day, "dateField": "finishedAt"},
        {**old_day, "dateField": "startedAt", "sortOrder": "asc"},
    ):
        await matches_first_page(params)

    # A job of the oldest day that waited until now to start: the first match of the
    # newest day's starts by creation, and of startedAt descending over the oldest day's
    # creations (a page of one: the other 19 lie behind every newer job). Its lag widens
    # the span in the page's own snapshot.
    await pg.execute(
        "INSERT INTO jobs (id, queue, name, status, created_at, started_at)"
        " VALUES ('late', 'q', 't', 'active', $1, now() - interval '1 minute')",
        oldest + DAY / 2,
    )
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    ids = await matches_first_page({**new_day, "dateField": "startedAt", "sortOrder": "asc"})
    assert ids[0] == "late"
    # (a range not asked before: the API keeps what it read of a span for a minute)
    later = {**old_day, "startDate": (oldest + timedelta(seconds=1)).isoformat()}
    status, body, _ = await search(api, {**later, "sortBy": "startedAt", "limit": 1})
    assert status == 200 and body["items"][0]["id"] == "late", body


# 40,000 jobs given ids in order of creation, one every 20 s; every fourth waits (no start
# or finish time): sorted by startedAt ascending, the waiting ones come first, in id order.
IN_ORDER = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at)"
    " SELECT 'j' || lpad(n::text, 6, '0'), 'q', 't',"
    " CASE WHEN n % 4 = 0 THEN 'waiting' ELSE 'completed' END, t,"
    " CASE WHEN n % 4 <> 0 THEN t + interval '1 second' END,"
    " CASE WHEN n % 4 <> 0 THEN t + interval '2 seconds' END"
    " FROM generate_series(1, 40000) n,"
    " LATERAL (SELECT now() - make_interval(secs => (40000 - n) * 20) AS t) ts"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_whose_matches_lie_deep_in_the_jobs_lacking_its_sort_value_is_refused(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(IN_ORDER)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    oldest, newest = await pg.fetchrow("SELECT min(created_at), max(created_at) FROM jobs")
    # The newest day's waiting jobs lie behind 9,000 older ones in the block: refused.
    new_day = {"startDate": (newest - DAY).isoformat(), "endDate": newest.isoformat()}
    for field in ("startedAt", "finishedAt", "duration"):
        status, body, _ = await search(api, {**new_day, "sortBy": field, "sortOrder": "asc"})
        assert status == 422, (field, body)
        assert (
            f"the jobs without a {field} come first, and fewer than a page of the first 1,000 jobs"
            in body["detail"]
        ), body
    # The oldest day's waiting jobs head the block: served at once, those first.
    old_day = {"startDate": oldest.isoformat(), "endDate": (oldest + DAY).isoformat()}
    status, body, _ = await search(api, {**old_day, "sortBy": "startedAt", "sortOrder": "asc"})
    assert status == 200 and len(body["items"]) == 20, body
    assert {item["status"] for item in body["items"]} == {"waiting"}


async def test_the_guard_knows_the_index_that_walks_each_sort_column(pg: asyncpg.Pool) -> None:
    """``search_head`` reads the walk of these indexes by ``ORDER BY column, id``."""
    primary = await pg.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", PRIMARY_KEY)
    assert primary.endswith("USING btree (id)"), primary
    for column, index in SORT_INDEXES.items():
        definition = await pg.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = $1", index
        )
        assert definition.endswith(f"USING btree ({column} DESC NULLS LAST, id DESC)") or (
            definition.endswith(f"USING btree ({column} DESC, id DESC)")
        ), definition


# 20,000 jobs, one in ten failed, and then a burst of 5,000 completed ones of a new queue:
# sorted by a time descending, the burst comes before the first failed job.
BURST = (
    "INSERT INTO jobs (id, queue, name, status, created_at, started_at, finished_at,"
    " duration_ms)"
    " SELECT 'j' || n, CASE WHEN n <= 5000 THEN 'import' ELSE 'q' END, 't',"
    " CASE WHEN n > 5000 AND n % 10 = 0 THEN 'failed' ELSE 'completed' END, t,"
    " t + interval '1 second', t + interval '2 seconds', 1000"
    " FROM generate_series(1, 25000) n,"
    " LATERAL (SELECT now() - make_interval(secs => n * 20) AS t) ts"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_behind_a_burst_of_other_jobs_in_its_sort_order_is_refused_up_front(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(BURST)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    for field in ("startedAt", "finishedAt", "createdAt"):
        status, body, _ = await search(api, {"status": "failed", "sortBy": field})
        if status == 200:  # the planner may read failed jobs by status (createdAt): fine
            assert field == "createdAt" and len(body["items"]) == 20, body
            continue
        assert status == 422, (field, body)
        assert body["detail"].startswith(
            f"sortBy: sorted by {field} descending, fewer than a page of the first 1,000 jobs"
        ), body
        # Ascending, the failed jobs are near the front: served.
        status, body, _ = await search(
            api, {"status": "failed", "sortBy": field, "sortOrder": "asc"}
        )
        assert status == 200 and len(body["items"]) == 20, body
    # Completed jobs are everywhere, the burst included: served.
    status, body, _ = await search(api, {"status": "completed", "sortBy": "startedAt"})
    assert status == 200 and len(body["items"]) == 20, body


# 20,000 jobs of "q" with ids j…, then 2,000 of the queue "new" with ids a…: in id order,
# the newest ids are all of "q".
ID_ORDER = (
    "INSERT INTO jobs (id, queue, name, status, created_at)"
    " SELECT CASE WHEN n <= 2000 THEN 'a' ELSE 'j' END || lpad(n::text, 6, '0'),"
    " CASE WHEN n <= 2000 THEN 'new' ELSE 'q' END, 't', 'completed',"
    " now() - make_interval(secs => n)"
    " FROM generate_series(1, 22000) n"
)


# No page budget: a 422 here can only be the up-front refusal.
@pytest.mark.parametrize("limits", [CostLimits(page_budget_ms=0, walk_max_rows=1_000)])
async def test_a_page_sorted_by_the_one_queue_it_asks_for_walks_the_ids_and_is_read_first(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    await pg.execute(ID_ORDER)
    await pg.execute("SELECT widen_job_spans(); ANALYZE jobs")
    status, body, _ = await search(api, {"queues": "new", "sortBy": "queue"})
    if status == 200:  # the planner sorted the queue's few jobs instead: fine
        assert len(body["items"]) == 20 and {i["queue"] for i in body["items"]} == {"new"}
    else:
        assert status == 422, body
        assert body["detail"].startswith(
            "sortBy: sorted by queue descending, fewer than a page of the first 1,000 jobs"
        ), body
    # Ascending, its ids come first: served.
    status, body, _ = await search(api, {"queues": "new", "sortBy": "queue", "sortOrder": "asc"})
    assert status == 200 and [i["id"] for i in body["items"]][:2] == ["a000001", "a000002"], body
