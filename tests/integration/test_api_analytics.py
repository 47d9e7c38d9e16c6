"""Analytics endpoints over HTTP: parameters, queue scope, the cache, live counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient
from jobdeck.events import JobStatus, now_ms
from jobdeck.histogram import RELATIVE_ERROR
from jobdeck.queues import JobSpec, QueueClient
from jobdeck_gateway.stats import measure
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup_rebuild import rebuild
from jobdeck_recorder.store import QUERIES as STORE
from jobdeck_recorder.store import json_param, row_doc
from redis.asyncio import Redis

from tests.integration.test_analytics_exact import HOUR, record_histories
from tests.integration.test_recorder_consumer import running, wait_drained
from tests.support.api import auth

BASE = "/api/v1/jobs/analytics"
ENDPOINTS = ("success-trends", "performance", "failures", "resource-usage")


async def test_bad_parameters_are_422_naming_the_parameter(api: TestClient) -> None:
    now = datetime.now(UTC)
    cases = [
        ({"interval": "week"}, "interval"),
        (
            {"startDate": now.isoformat(), "endDate": (now - timedelta(hours=1)).isoformat()},
            "endDate",
        ),
        ({"startDate": (now - timedelta(days=200)).isoformat(), "interval": "15min"}, "interval"),
        ({"startDate": "yesterday"}, "startDate"),
        ({"jobName": ""}, "jobName"),
        ({"queues": "not a queue!"}, "queues.0"),
        ({"colour": "red"}, "colour"),
    ]
    for endpoint in ENDPOINTS:
        for params, name in cases:
            resp = await api.get(f"{BASE}/{endpoint}", params=params, headers=auth("viewer"))
            assert resp.status == 422, (endpoint, params, await resp.text())
            body = await resp.json()
            assert resp.content_type == "application/problem+json"
            assert name in [e["name"] for e in body["errors"]], (params, body)
    assert (await api.get(f"{BASE}/performance")).status == 401


async def test_figures_respect_the_token_scope_and_the_cache_never_crosses_it(
    api: TestClient, redis: Redis, pg: asyncpg.Pool
) -> None:
    base = now_ms() // HOUR * HOUR - 6 * HOUR
    await record_histories(redis, pg, base, 60, seed=5)
    start = datetime.fromtimestamp(base / 1000, UTC)
    params = {"startDate": start.isoformat(), "endDate": (start + timedelta(hours=6)).isoformat()}
    direct = {
        r["queue"]: r["n"]
        for r in await pg.fetch(
            "SELECT queue, count(*) AS n FROM jobs WHERE status IN ('completed','failed',"
            "'cancelled') AND finished_at >= $1 GROUP BY queue",
            start,
        )
    }
    url = f"{BASE}/performance"
    first = await (await api.get(url, params=params, headers=auth("viewer"))).json()
    assert first["freshness"]["cached"] is False
    assert first["overall"]["finished"] == sum(direct.values())
    again = await (await api.get(url, params=params, headers=auth("viewer"))).json()
    assert again["freshness"]["cached"] is True and again["overall"] == first["overall"]

    alpha = await (await api.get(url, params=params, headers=auth("viewer", ["alpha"]))).json()
    assert alpha["freshness"]["cached"] is False  # another scope: never the cached answer
    assert alpha["overall"]["finished"] == direct["alpha"]
    assert {q["queue"] for q in alpha["queues"]} == {"alpha"}
    assert {p["queue"] for p in alpha["jobNames"]} == {"alpha"}

    outside = {**params, "queues": "beta"}
    for endpoint in ENDPOINTS:
        resp = await api.get(
            f"{BASE}/{endpoint}", params=outside, headers=auth("viewer", ["alpha"])
        )
        body = await resp.json()
        assert resp.status == 200
        text = await resp.text()
        assert "beta" not in text, endpoint
        if endpoint == "failures":
            assert body["totals"]["failed"] == 0 and body["fingerprints"] == []

    named = await (
        await api.get(url, params={**params, "jobName": "parse"}, headers=auth("viewer"))
    ).json()
    assert {p["name"] for p in named["jobNames"]} == {"parse"}
    trends = await (
        await api.get(f"{BASE}/success-trends", params=params, headers=auth("viewer", ["gamma"]))
    ).json()
    assert trends["overall"]["totals"]["finished"] == direct["gamma"]
    assert trends["method"]["window"] == 12 and trends["range"]["interval"] == "15min"


async def test_live_counts_are_the_gateways_and_an_unserved_queue_is_flagged(
    api: TestClient, redis: Redis, pg: asyncpg.Pool
) -> None:
    client = QueueClient(redis, 1_000_000)
    later = now_ms() + 3_600_000
    specs = [JobSpec(queue="stuck", name="task") for _ in range(4)]
    specs.append(JobSpec(queue="stuck", name="task", run_at_ms=later))
    assert all(await client.enqueue_many(specs, by="test"))
    async with running(redis, pg):  # the recorder makes the queue known
        await wait_drained(redis)
    gateway = await measure(redis, pg)
    perf = await (await api.get(f"{BASE}/performance", headers=auth("viewer"))).json()
    stuck = next(q for q in perf["queues"] if q["queue"] == "stuck")
    g = gateway.queues["stuck"]
    assert stuck["live"] == {
        "waiting": g.waiting,
        "active": g.active,
        "delayed": g.delayed,
        "workers": g.workers,
    }
    assert (g.waiting, g.delayed) == (4, 1)
    assert perf["overall"]["live"]["waiting"] == 4
    failures = await (await api.get(f"{BASE}/failures", headers=auth("viewer"))).json()
    (finding,) = [r for r in failures["recommendations"] if r["rule"] == "no_worker"]
    assert finding["queue"] == "stuck" and finding["evidence"] == {"waiting": 4, "liveWorkers": 0}
    hidden = await (await api.get(f"{BASE}/failures", headers=auth("viewer", ["other"]))).json()
    assert hidden["recommendations"] == []


async def test_timeouts_near_the_limit_are_recommended_with_their_numbers(
    api: TestClient, pg: asyncpg.Pool
) -> None:
    """Jobs recorded before the rollups existed, then rebuilt (``rebuild-rollups``): 'slow'
    mostly times out near its 10 s timeout; 'mixed' times out too, but in a minority."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = int((day + timedelta(minutes=30)).timestamp() * 1000)
    rows = []
    for i in range(10):
        timed_out = i < 8
        rows.append(
            JobRow(
                id=f"slow-{i}",
                queue="q",
                name="slow",
                status=JobStatus.FAILED,
                created_at=at,
                options={"timeout_s": 10},
                attempts=1,
                started_at=at + 100,
                finished_at=at + 100 + 9_700 + i,
                duration_ms=9_700 + i,
                error_type="JobTimeout" if timed_out else "KeyError",
                error_message="job timed out after 10s" if timed_out else "'k' missing",
            )
        )
    for i in range(10):
        rows.append(
            JobRow(
                id=f"mixed-{i}",
                queue="q",
                name="mixed",
                status=JobStatus.FAILED,
                created_at=at,
                options={"timeout_s": 10},
                attempts=1,
                started_at=at + 100,
                finished_at=at + 10_000,
                duration_ms=9_900,
                error_type="JobTimeout" if i < 4 else "KeyError",
                error_message="job timed out after 10s" if i < 4 else "'k' missing",
            )
        )
    await pg.execute(STORE["insert_jobs"], json_param([row_doc(r) for r in rows]))
    await rebuild(pg, day, day + timedelta(days=1), RecorderConfig())
    params = {"startDate": day.isoformat(), "endDate": (day + timedelta(hours=1)).isoformat()}
    body = await (await api.get(f"{BASE}/failures", params=params, headers=auth("viewer"))).json()
    (finding,) = [r for r in body["recommendations"] if r["rule"] == "timeouts_near_limit"]
    assert (finding["queue"], finding["name"]) == ("q", "slow")
    evidence = finding["evidence"]
    assert (evidence["failures"], evidence["timeouts"], evidence["timeoutMs"]) == (10, 8, 10_000)
    assert evidence["timeoutSource"].startswith("options of job slow-")
    assert abs(evidence["p95DurationMs"] - 9_709) <= 9_709 * RELATIVE_ERROR
