"""``GET /api/v1/system`` over real Redis: stream, groups and lag, dead letters, who is alive."""

from __future__ import annotations

import base64
import json
import time

from aiohttp.test_utils import TestClient
from jobdeck.lag import RECORDER_LAG_KEY, RecorderLag
from jobdeck.queues import WORKERS, WORKERS_INFO, JobSpec, QueueClient
from jobdeck.streams import EVENTS, dead_letter
from redis.asyncio import Redis

from tests.support.api import auth


async def test_system_report_shows_the_pipeline_to_admins_only(
    api: TestClient, redis: Redis
) -> None:
    queues = QueueClient(redis, 10_000)
    for _ in range(5):
        await queues.enqueue(JobSpec(queue="sys", name="t"))
    await redis.xgroup_create(EVENTS, "recorder", id="0")
    await redis.xreadgroup("recorder", "recorder-a", {EVENTS: ">"}, count=2)  # 2 pending, 3 lag
    for n in range(3):
        await dead_letter(redis, f"1-{n}", b"\x81\xa1v\x63" * (1 + 600 * n), f"bad {n}")
    lag = RecorderLag(
        lag=3,
        pending=2,
        consumers=1,
        last_delivered_id="1-1",
        stream_length=5,
        events_per_s=12.5,
        updated_at=int(time.time() * 1000),
        instance="recorder-a",
    )
    await redis.set(RECORDER_LAG_KEY, lag.to_json())
    await redis.zadd(WORKERS, {"w1": int(time.time() * 1000) + 60_000})
    await redis.hset(  # type: ignore[misc]
        WORKERS_INFO, "w1", json.dumps({"queues": ["sys"], "concurrency": 4, "active": 1})
    )

    for role in ("viewer", "operator"):
        assert (await api.get("/api/v1/system", headers=auth(role))).status == 403
    resp = await api.get("/api/v1/system?deadLetters=2", headers=auth("admin"))
    body = await resp.json()
    assert resp.status == 200, body

    assert body["stream"]["length"] == 5 and body["stream"]["key"] == EVENTS
    assert body["stream"]["firstId"] < body["stream"]["lastId"]
    (group,) = body["groups"]
    assert (group["name"], group["pending"], group["lag"]) == ("recorder", 2, 3)
    assert group["consumers"][0]["name"] == "recorder-a"
    dead = body["deadLetters"]
    assert dead["count"] == 3 and [d["reason"] for d in dead["last"]] == ["bad 2", "bad 1"]
    newest = dead["last"][0]
    assert newest["entryId"] == "1-2" and newest["truncated"] is True
    assert base64.b64decode(newest["rawBase64"]).startswith(b"\x81\xa1v\x63")
    assert body["recorder"]["behind"] == 5 and body["recorder"]["eventsPerS"] == 12.5
    assert [i["service"] for i in body["instances"]] == ["api"]  # this test's app announced
    assert body["workers"] == [{"instance": "w1", "queues": ["sys"], "concurrency": 4, "active": 1}]


async def test_an_empty_system_reports_nothing_running(api: TestClient) -> None:
    resp = await api.get("/api/v1/system", headers=auth("admin"))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["stream"]["length"] == 0 and body["stream"]["firstId"] is None
    assert body["groups"] == [] and body["deadLetters"]["count"] == 0
    assert body["recorder"] is None and body["workers"] == []
