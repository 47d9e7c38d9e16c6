"""Bulk retry and cancel by filter: a fingerprint from the failure analysis as a handle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient
from jobdeck.events import now_ms
from jobdeck.queues import JobSpec, QueueClient, queue_key
from jobdeck_recorder.fingerprint import fingerprint
from redis.asyncio import Redis

from tests.integration.test_analytics_exact import HOUR, record_histories
from tests.integration.test_recorder_consumer import running, wait_drained
from tests.support.api import auth

RETRY = "/api/v1/jobs/bulk/retry"
CANCEL = "/api/v1/jobs/bulk/cancel"


async def failed_by_print(
    pg: asyncpg.Pool, queues: tuple[str, ...] | None = None
) -> dict[str, list[str]]:
    rows = await pg.fetch(
        "SELECT id, queue, error_type, error_message FROM jobs WHERE status = 'failed' ORDER BY id"
    )
    found: dict[str, list[str]] = {}
    for r in rows:
        if queues is None or r["queue"] in queues:
            found.setdefault(fingerprint(r["error_type"], r["error_message"]).value, []).append(
                r["id"]
            )
    return found


async def test_retry_by_fingerprint_dry_run_then_in_batches(
    api: TestClient, redis: Redis, pg: asyncpg.Pool
) -> None:
    base = now_ms() // HOUR * HOUR - 6 * HOUR
    await record_histories(redis, pg, base, 120, seed=3)
    start = datetime.fromtimestamp(base / 1000, UTC)
    params = {"startDate": start.isoformat(), "endDate": (start + timedelta(hours=6)).isoformat()}
    report = await (
        await api.get("/api/v1/jobs/analytics/failures", params=params, headers=auth("viewer"))
    ).json()
    top = report["fingerprints"][0]
    expected = (await failed_by_print(pg))[top["fingerprint"]]
    assert top["count"] == len(expected) >= 3

    dry = await api.post(
        RETRY, json={"fingerprint": top["fingerprint"], "dryRun": True}, headers=auth("operator")
    )
    body = await dry.json()
    assert dry.status == 200, body
    assert (body["matched"], body["remaining"], body["dryRun"], body["total"]) == (
        len(expected),
        len(expected),
        True,
        0,
    )
    assert set(body["sampleIds"]) <= set(expected)
    assert await redis.zcard(queue_key("alpha")) + await redis.zcard(queue_key("beta")) == 0

    first = await (
        await api.post(
            RETRY, json={"fingerprint": top["fingerprint"], "limit": 2}, headers=auth("operator")
        )
    ).json()
    assert first["counts"]["retried"] == 2 and first["matched"] == len(expected)
    assert first["remaining"] == len(expected) - 2
    retried = {r["id"] for r in first["results"]}
    assert retried <= set(expected)
    audit = await pg.fetchrow("SELECT * FROM audit_log WHERE action = 'jobs.bulk_retry'")
    assert audit["detail"]["filter"]["fingerprint"] == top["fingerprint"]
    assert sorted(audit["targets"]) == sorted(retried)

    scoped_queue = await pg.fetchval("SELECT queue FROM jobs WHERE id = $1", expected[-1])
    scoped = await (
        await api.post(
            RETRY,
            json={"fingerprint": top["fingerprint"], "dryRun": True},
            headers=auth("operator", [scoped_queue]),
        )
    ).json()
    in_queue = (await failed_by_print(pg, (scoped_queue,)))[top["fingerprint"]]
    # The rows of the two just retried say failed until the recorder records their retry.
    assert scoped["matched"] == len(in_queue)

    rest = await (
        await api.post(RETRY, json={"fingerprint": top["fingerprint"]}, headers=auth("operator"))
    ).json()
    outcomes = {r["id"]: r["outcome"] for r in rest["results"]}
    assert {outcomes[i] for i in retried} == {"skipped"}  # one retry per attempt, as by id
    assert rest["counts"]["retried"] == len(expected) - 2 and rest["remaining"] == 0


async def test_cancel_by_queue_filter(api: TestClient, redis: Redis, pg: asyncpg.Pool) -> None:
    client = QueueClient(redis, 1_000_000)
    specs = [JobSpec(queue="backlog", name="task") for _ in range(5)]
    specs.append(JobSpec(queue="other", name="task"))
    assert all(await client.enqueue_many(specs, by="test"))
    async with running(redis, pg):
        await wait_drained(redis)
    dry = await (
        await api.post(
            CANCEL, json={"queues": ["backlog"], "dryRun": True}, headers=auth("operator")
        )
    ).json()
    assert dry["matched"] == 5
    done = await (
        await api.post(CANCEL, json={"queues": ["backlog"]}, headers=auth("operator"))
    ).json()
    assert done["counts"]["cancelled"] == 5 and done["remaining"] == 0
    assert (
        await redis.zcard(queue_key("backlog")) == 0 and await redis.zcard(queue_key("other")) == 1
    )
    hidden = await (
        await api.post(CANCEL, json={"queues": ["other"]}, headers=auth("operator", ["backlog"]))
    ).json()
    assert hidden["matched"] == 0 and await redis.zcard(queue_key("other")) == 1


async def test_cancel_by_filter_narrowed_to_a_status(
    api: TestClient, redis: Redis, pg: asyncpg.Pool
) -> None:
    """ "Cancel all waiting jobs of this queue" leaves its delayed ones alone."""
    client = QueueClient(redis, 1_000_000)
    later = now_ms() + 3_600_000
    waiting = [JobSpec(queue="backlog", name="task") for _ in range(3)]
    delayed = [JobSpec(queue="backlog", name="task", run_at_ms=later) for _ in range(2)]
    assert all(await client.enqueue_many([*waiting, *delayed], by="test"))
    async with running(redis, pg):
        await wait_drained(redis)
    body = {"queues": ["backlog"], "status": ["waiting"]}
    dry = await (
        await api.post(CANCEL, json={**body, "dryRun": True}, headers=auth("operator"))
    ).json()
    assert dry["matched"] == 3 and set(dry["sampleIds"]) == {j.job_id for j in waiting}
    done = await (await api.post(CANCEL, json=body, headers=auth("operator"))).json()
    assert done["counts"]["cancelled"] == done["total"] == 3 and done["remaining"] == 0
    left = await pg.fetch("SELECT status FROM jobs WHERE id = ANY($1)", [j.job_id for j in delayed])
    assert [r["status"] for r in left] == ["delayed", "delayed"]

    wrong = await api.post(
        CANCEL, json={"queues": ["backlog"], "status": ["waiting", "failed"]},
        headers=auth("operator"),
    )  # fmt: skip
    problem = await wrong.json()
    assert wrong.status == 422 and problem["errors"][0]["name"] == "status", problem
    assert "failed" in problem["detail"]


async def test_filter_form_validation(api: TestClient) -> None:
    bad = [
        ({"jobIds": ["a"], "fingerprint": "0123456789abcdef"}, "jobIds"),
        ({"dryRun": True}, "jobIds"),
        ({"fingerprint": "not-a-print"}, "fingerprint"),
        ({"queues": ["q"], "limit": 0}, "limit"),
        ({"queues": ["q"], "startDate": "2024-02-01", "endDate": "2024-01-01"}, "endDate"),
        ({"queues": ["q"], "status": ["lost"]}, "status"),
        ({"queues": ["q"], "status": []}, "status"),
        ({"jobIds": ["a"], "status": ["failed"]}, "jobIds"),
    ]
    for body, name in bad:
        resp = await api.post(RETRY, json=body, headers=auth("operator"))
        assert resp.status == 422, body
        assert name in (await resp.json())["detail"], body
    denied = await api.post(RETRY, json={"queues": ["q"], "dryRun": True}, headers=auth("viewer"))
    assert denied.status == 403
