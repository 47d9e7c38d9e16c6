"""Deleting finished jobs, cleaning and draining queues, promoting and reprioritizing jobs:
over the API, with real Redis (the queue protocol) and Postgres (rows, logs, tombstones)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from jobdeck.events import EventType, decode
from jobdeck.queues import JobSpec, QueueClient, delayed_key, queue_key
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis

from tests.support.api import auth, job_row, seed


async def events_of(redis: Redis, etype: EventType) -> list[Any]:
    found = [decode(f[EVENT_FIELD]) for _, f in await redis.xrange(EVENTS)]
    return [e for e in found if e.type is etype]


async def add_logs(pg: Any, job_id: str) -> None:
    await pg.execute(
        "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
        " VALUES ($1, 1, 1, now(), 'info', 'hello'), ($1, 1, 2, now(), 'info', 'bye')",
        job_id,
    )


async def test_delete_one_finished_job_everywhere_and_only_a_finished_one(
    api: TestClient, pg: Any, redis: Redis
) -> None:
    done, running = await seed(
        pg, [job_row(status="completed", queue="mail"), job_row(status="active", queue="mail")]
    )
    await add_logs(pg, done["id"])
    assert (await api.delete(f"/api/v1/jobs/{done['id']}", headers=auth("viewer"))).status == 403

    resp = await api.delete(f"/api/v1/jobs/{done['id']}", headers=auth("operator"))
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["outcome"], body["previousStatus"]) == ("removed", "completed")
    assert (await api.get(f"/api/v1/jobs/{done['id']}", headers=auth())).status == 404
    assert await pg.fetchval("SELECT count(*) FROM job_logs WHERE job_id = $1", done["id"]) == 0
    tomb = await pg.fetchrow("SELECT * FROM job_tombstones WHERE id = $1", done["id"])
    assert tomb["queue"] == "mail" and tomb["removed_by"] == "operator-user"
    (removed,) = await events_of(redis, EventType.REMOVED)
    assert removed.queue == "mail" and removed.fields["job_ids"] == [done["id"]]
    assert removed.fields["by"] == "operator-user"

    again = await api.delete(f"/api/v1/jobs/{done['id']}", headers=auth("operator"))
    assert again.status == 404
    busy = await api.delete(f"/api/v1/jobs/{running['id']}", headers=auth("operator"))
    assert busy.status == 409 and "cancel" in (await busy.json())["detail"]
    audit = await pg.fetch("SELECT action, outcome FROM audit_log ORDER BY id")
    assert [tuple(a) for a in audit][:2] == [("delete_job", "denied"), ("jobs.delete", "ok")]


async def test_bulk_delete_reports_each_job(api: TestClient, pg: Any, redis: Redis) -> None:
    done, failed, waiting, hidden, retried = await seed(
        pg,
        [
            job_row(status="completed", queue="a"),
            job_row(status="failed", queue="a"),
            job_row(status="waiting", queue="a"),
            job_row(status="completed", queue="secret"),
            job_row(status="failed", queue="a"),
        ],
    )
    # Retried a moment ago: queued again in Redis while its row still says failed.
    await QueueClient(redis, 10_000).enqueue(JobSpec(queue="a", name="t", job_id=retried["id"]))
    ids = [done["id"], failed["id"], waiting["id"], hidden["id"], retried["id"], "nope"]
    resp = await api.post(
        "/api/v1/jobs/bulk/delete", json={"jobIds": ids}, headers=auth("operator", ["a"])
    )
    body = await resp.json()
    assert resp.status == 200, body
    outcomes = [(r["id"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (done["id"], "removed"),
        (failed["id"], "removed"),
        (waiting["id"], "skipped"),
        (hidden["id"], "not_found"),
        (retried["id"], "skipped"),
        ("nope", "not_found"),
    ]
    assert "again" in body["results"][4]["reason"]
    assert body["counts"]["removed"] == 2 and body["total"] == 6
    left = {r["id"] for r in await pg.fetch("SELECT id FROM jobs")}
    assert left == {waiting["id"], hidden["id"], retried["id"]}


async def test_bulk_delete_by_filter_counts_first_then_deletes_in_batches(
    api: TestClient, pg: Any
) -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    await seed(
        pg,
        [job_row(status="completed", queue="imports", created_at=old) for _ in range(5)]
        + [job_row(status="waiting", queue="imports", created_at=old)]
        + [job_row(status="completed", queue="other", created_at=old)],
    )
    url = "/api/v1/jobs/bulk/delete"
    headers = auth("operator")
    dry = await (
        await api.post(url, json={"queues": ["imports"], "dryRun": True}, headers=headers)
    ).json()
    assert (dry["matched"], dry["dryRun"], dry["total"]) == (5, True, 0)
    first = await (
        await api.post(url, json={"queues": ["imports"], "limit": 3}, headers=headers)
    ).json()
    assert (first["counts"]["removed"], first["remaining"]) == (3, 2)
    second = await (
        await api.post(url, json={"queues": ["imports"], "limit": 3}, headers=headers)
    ).json()
    assert (second["counts"]["removed"], second["remaining"]) == (2, 0)
    left = sorted((r["queue"], r["status"]) for r in await pg.fetch("SELECT * FROM jobs"))
    assert left == [("imports", "waiting"), ("other", "completed")]


async def test_clean_deletes_what_finished_before_the_cutoff(api: TestClient, pg: Any) -> None:
    now = datetime.now(UTC)
    fresh = job_row(status="completed", queue="q", created_at=now - timedelta(hours=2))
    fresh["finished_at"] = now - timedelta(hours=1)
    stale = job_row(status="failed", queue="q", created_at=now - timedelta(days=11))
    stale["finished_at"] = now - timedelta(days=10)
    elsewhere = job_row(status="completed", queue="r", created_at=now - timedelta(days=11))
    elsewhere["finished_at"] = now - timedelta(days=10)
    await seed(pg, [fresh, stale, elsewhere])
    url = "/api/v1/jobs/queues/q/clean"
    dry = await (await api.post(url, json={"olderThanS": 86_400}, headers=auth("operator"))).json()
    assert dry["matched"] == 1 and dry["dryRun"] is True
    done = await api.post(
        url, json={"olderThanS": 86_400, "dryRun": False}, headers=auth("operator")
    )
    body = await done.json()
    assert done.status == 200 and body["counts"]["removed"] == 1, body
    assert body["results"][0]["id"] == stale["id"]
    left = {r["id"] for r in await pg.fetch("SELECT id FROM jobs")}
    assert left == {fresh["id"], elsewhere["id"]}
    denied = await api.post(
        url, json={"olderThanS": 0, "dryRun": False}, headers=auth("operator", ["r"])
    )
    assert denied.status == 403


async def test_drain_removes_waiting_jobs_and_says_how_many(api: TestClient, redis: Redis) -> None:
    client = QueueClient(redis, 10_000)
    for _ in range(3):
        await client.enqueue(JobSpec(queue="d", name="t"))
    later = JobSpec(queue="d", name="t", run_at_ms=int(time.time() * 1000) + 3_600_000)
    await client.enqueue(later)
    url = "/api/v1/jobs/queues/d/drain"
    dry = await (await api.post(url, json={"dryRun": True}, headers=auth("operator"))).json()
    assert (dry["waiting"], dry["delayed"], dry["drained"]) == (3, 1, 0)
    body = await (await api.post(url, json={}, headers=auth("operator"))).json()
    assert body["drained"] == 3
    assert await redis.zcard(queue_key("d")) == 0 and await redis.zcard(delayed_key("d")) == 1
    cancelled = await events_of(redis, EventType.CANCELLED)
    assert len(cancelled) == 3 and {e.fields["by"] for e in cancelled} == {"operator-user"}
    assert all(e.fields["started_at"] is None and e.attempt == 1 for e in cancelled)
    body = await (await api.post(url, json={"delayed": True}, headers=auth("operator"))).json()
    assert body["drained"] == 1 and await redis.zcard(delayed_key("d")) == 0


async def test_promote_a_delayed_job_and_reprioritize_a_waiting_one(
    api: TestClient, pg: Any, redis: Redis
) -> None:
    client = QueueClient(redis, 10_000)
    first = JobSpec(queue="p", name="t")
    second = JobSpec(queue="p", name="t")
    later = JobSpec(queue="p", name="t", run_at_ms=int(time.time() * 1000) + 3_600_000)
    for spec in (first, second, later):
        await client.enqueue(spec)
        # Ready order is by enqueue millisecond, then by id: give each job its own millisecond.
        await asyncio.sleep(0.002)
    await seed(
        pg,
        [
            job_row(id=first.job_id, queue="p", status="waiting"),
            job_row(id=second.job_id, queue="p", status="waiting"),
            job_row(id=later.job_id, queue="p", status="delayed"),
        ],
    )
    resp = await api.post(f"/api/v1/jobs/{later.job_id}/promote", headers=auth("operator"))
    body = await resp.json()
    assert resp.status == 200 and body["outcome"] == "promoted", body
    assert await redis.zscore(delayed_key("p"), later.job_id) is None
    ready = [m.decode() for m in await redis.zrange(queue_key("p"), 0, -1)]
    assert ready == [first.job_id, second.job_id, later.job_id]  # FIFO among priority 0
    again = await api.post(f"/api/v1/jobs/{later.job_id}/promote", headers=auth("operator"))
    assert again.status == 409

    resp = await api.post(
        f"/api/v1/jobs/{second.job_id}/priority", json={"priority": 50}, headers=auth("operator")
    )
    assert resp.status == 200 and (await resp.json())["outcome"] == "reprioritized"
    ready = [m.decode() for m in await redis.zrange(queue_key("p"), 0, -1)]
    assert ready == [second.job_id, first.job_id, later.job_id]
    assert await pg.fetchval("SELECT priority FROM jobs WHERE id = $1", second.job_id) == 50
    back = await api.post(
        f"/api/v1/jobs/{second.job_id}/priority", json={"priority": 0}, headers=auth("operator")
    )
    assert back.status == 200
    ready = [m.decode() for m in await redis.zrange(queue_key("p"), 0, -1)]
    assert ready == [first.job_id, second.job_id, later.job_id]  # its old place again
    bad = await api.post(
        f"/api/v1/jobs/{second.job_id}/priority", json={"priority": 101}, headers=auth("operator")
    )
    assert bad.status == 422
