"""Queues: listing with counts and schedules, pause/resume, config CRUD; the audit log."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp.test_utils import TestClient
from jobdeck.events import EventType, decode
from jobdeck.queues import PAUSED, WORKERS, WORKERS_INFO, JobSpec, QueueClient
from jobdeck.streams import EVENT_FIELD, EVENTS
from jobdeck_gateway.stats import measure
from redis.asyncio import Redis

from tests.support.api import auth, job_row, seed


async def test_list_queues_with_counts_config_schedules(
    api: TestClient, pg: Any, redis: Redis
) -> None:
    await seed(
        pg,
        [
            job_row(queue="emails", status="active"),
            job_row(queue="emails", status="completed"),
            job_row(queue="reports", status="waiting"),  # recorded, but no longer in Redis
        ],
    )
    queues_client = QueueClient(redis, 10_000)
    for _ in range(2):  # waiting; the running one is recorded (and never in the ready set)
        await queues_client.enqueue(JobSpec(queue="emails", name="t"))
    later = int(time.time() * 1000) + 60_000
    await queues_client.enqueue(JobSpec(queue="reports", name="t", run_at_ms=later))
    await pg.execute("INSERT INTO job_queue_configs (queue, concurrency) VALUES ('configured', 4)")
    tid = await pg.fetchval(
        "INSERT INTO job_templates (name, queue, task) VALUES ('t', 'reports', 'r') RETURNING id"
    )
    await pg.execute(
        "INSERT INTO job_schedules (name, template_id, cron_expression, next_run_at)"
        " VALUES ('nightly', $1, '0 2 * * *', now() + interval '1 hour')",
        tid,
    )
    await redis.zadd(WORKERS, {"w1": int(time.time() * 1000) + 60_000, "dead": 1})
    await redis.hset(WORKERS_INFO, "w1", json.dumps({"queues": ["emails"], "concurrency": 2}))
    await redis.hset(WORKERS_INFO, "dead", json.dumps({"queues": ["emails"]}))
    resp = await api.post("/api/v1/jobs/queues/emails/pause", headers=auth("operator"))
    assert resp.status == 200 and (await resp.json()) == {"queue": "emails", "paused": True}

    body = await (await api.get("/api/v1/jobs/queues", headers=auth("viewer"))).json()
    queues = {q["name"]: q for q in body["items"]}
    assert set(queues) == {"emails", "reports", "configured"}
    emails = queues["emails"]
    assert emails["paused"] is True and emails["pausedBy"] == "operator-user"
    assert emails["counts"] == {"waiting": 2, "delayed": 0, "active": 1, "queuedInRedis": 2}
    assert emails["workers"] == 1
    assert queues["configured"]["config"]["concurrency"] == 4
    assert queues["reports"]["counts"] == {
        "waiting": 0,
        "delayed": 1,
        "active": 0,
        "queuedInRedis": 1,
    }
    # The socket's queueStats mean the same by each word.
    snapshot = await measure(redis, pg)
    for name, q in queues.items():
        live = snapshot.queues[name]
        assert (live.waiting, live.delayed, live.active) == (
            q["counts"]["waiting"],
            q["counts"]["delayed"],
            q["counts"]["active"],
        ), name
    (schedule,) = queues["reports"]["schedules"]
    assert schedule["name"] == "nightly" and schedule["nextRunAt"]

    resp = await api.post("/api/v1/jobs/queues/emails/resume", headers=auth("operator"))
    assert (await resp.json())["paused"] is False
    assert await redis.hget(PAUSED, "emails") is None
    types = [decode(f[EVENT_FIELD]).type for _, f in await redis.xrange(EVENTS)]
    assert types[-2:] == [EventType.QUEUE_PAUSED, EventType.QUEUE_RESUMED]


async def test_queue_config_crud(api: TestClient) -> None:
    url = "/api/v1/jobs/queues/imports/config"
    assert (await api.get(url, headers=auth())).status == 404
    put = await api.put(
        url,
        json={"concurrency": 5, "alertFailureRate": 0.25, "description": "CSV imports"},
        headers=auth("admin"),
    )
    created = await put.json()
    assert put.status == 200, created
    assert created["concurrency"] == 5 and created["maxAttempts"] == 3
    assert created["alertFailureRate"] == 0.25 and created["updatedBy"] == "admin-user"
    again = await (await api.put(url, json={"concurrency": 6}, headers=auth())).json()
    assert again["concurrency"] == 6 and again["alertFailureRate"] is None
    got = await (await api.get(url, headers=auth("viewer"))).json()
    assert got["concurrency"] == 6
    bad = await api.put(url, json={"concurrency": 0, "bogus": 1}, headers=auth())
    detail = (await bad.json())["detail"]
    assert bad.status == 422 and "concurrency" in detail and "bogus" in detail
    badname = await api.put("/api/v1/jobs/queues/bad%20name!/config", json={}, headers=auth())
    assert badname.status == 422
    assert (await api.delete(url, headers=auth())).status == 200
    assert (await api.delete(url, headers=auth())).status == 404


async def test_audit_log_filters_and_pages(api: TestClient) -> None:
    for q in ("a", "b", "c"):
        await api.post(f"/api/v1/jobs/queues/{q}/pause", headers=auth("operator", sub="ann"))
    await api.post("/api/v1/jobs/queues/a/resume", headers=auth("admin", sub="bob"))
    everything = await (await api.get("/api/v1/audit", headers=auth("admin"))).json()
    assert [e["action"] for e in everything["items"]] == [
        "queues.resume",
        "queues.pause",
        "queues.pause",
        "queues.pause",
    ]
    assert everything["items"][0]["requestId"]
    ann = await (await api.get("/api/v1/audit", params={"actor": "ann"}, headers=auth())).json()
    assert len(ann["items"]) == 3 and {e["actor"] for e in ann["items"]} == {"ann"}
    resumes = await (
        await api.get("/api/v1/audit", params={"action": "queues.resume"}, headers=auth())
    ).json()
    assert resumes["items"][0]["targets"] == ["a"]
    page1 = await (await api.get("/api/v1/audit", params={"limit": "3"}, headers=auth())).json()
    page2 = await (
        await api.get(
            "/api/v1/audit", params={"limit": "3", "cursor": page1["nextCursor"]}, headers=auth()
        )
    ).json()
    assert len(page1["items"]) == 3 and len(page2["items"]) == 1
    future = await (
        await api.get("/api/v1/audit", params={"since": "2999-01-01"}, headers=auth())
    ).json()
    assert future["items"] == []
    past = await (
        await api.get("/api/v1/audit", params={"until": "2000-01-01"}, headers=auth())
    ).json()
    assert past["items"] == []
    assert (await api.get("/api/v1/audit", params={"cursor": "x"}, headers=auth())).status == 422
    traced = await api.post(
        "/api/v1/jobs/queues/d/pause", headers={**auth(), "X-Request-Id": "trace-123"}
    )
    assert traced.headers["X-Request-Id"] == "trace-123"
    mine = await (
        await api.get("/api/v1/audit", params={"action": "queues.pause"}, headers=auth())
    ).json()
    assert mine["items"][0]["requestId"] == "trace-123"


async def test_queue_retention_is_part_of_its_config(api: TestClient) -> None:
    url = "/api/v1/jobs/queues/imports/config"
    put = await api.put(url, json={"keepCompletedDays": 7, "keepLogsDays": 0}, headers=auth())
    body = await put.json()
    assert put.status == 200, body
    assert (body["keepCompletedDays"], body["keepFailedDays"], body["keepLogsDays"]) == (7, None, 0)
    bad = await api.put(url, json={"keepFailedDays": -1}, headers=auth())
    assert bad.status == 422 and "keepFailedDays" in (await bad.json())["detail"]
