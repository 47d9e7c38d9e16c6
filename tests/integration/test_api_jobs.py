"""Job detail and logs, enqueue, retry and cancel (single and bulk), audit entries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from jobdeck.events import EventType, decode
from jobdeck.queues import PRIORITY_WEIGHT_MS, job_key, queue_key
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis

from tests.support.api import BASE, auth, job_row, seed


async def events(redis: Redis) -> list[Any]:
    return [decode(fields[EVENT_FIELD]) for _, fields in await redis.xrange(EVENTS)]


async def test_job_detail_with_attempts_and_timing(api: TestClient, pg: Any) -> None:
    row = job_row(status="completed", attempts=2, duration_ms=1500)
    await seed(pg, [row])
    await pg.executemany(
        "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (row["id"], 1, 1, BASE, "info", "start"),
            (row["id"], 1, 2, BASE, "error", "crash"),
            (row["id"], 2, 1, BASE + timedelta(seconds=5), "info", "again"),
        ],
    )
    resp = await api.get(f"/api/v1/jobs/{row['id']}", headers=auth("viewer"))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["id"] == row["id"] and body["jobName"] == "noop" and body["status"] == "completed"
    assert body["data"] == row["data"] and body["result"] == {"ok": True}
    assert body["attempts"] == 2 and body["attemptsLeft"] == 1
    assert body["timing"]["durationMs"] == 1500 and body["timing"]["waitMs"] == 1000
    assert [a["attempt"] for a in body["attemptHistory"]] == [1, 2]
    assert body["attemptHistory"][0]["logLines"] == 2

    logs = await (await api.get(f"/api/v1/jobs/{row['id']}/logs", headers=auth())).json()
    assert [(line["attempt"], line["seq"]) for line in logs["items"]] == [(1, 1), (1, 2), (2, 1)]
    assert logs["total"] == 3
    page = await api.get(
        f"/api/v1/jobs/{row['id']}/logs", params={"limit": "1", "offset": "1"}, headers=auth()
    )
    assert [line["message"] for line in (await page.json())["items"]] == ["crash"]
    errors = await api.get(
        f"/api/v1/jobs/{row['id']}/logs", params={"level": "warning"}, headers=auth()
    )
    assert [line["message"] for line in (await errors.json())["items"]] == ["crash"]
    one = await api.get(f"/api/v1/jobs/{row['id']}/logs", params={"attempt": "2"}, headers=auth())
    assert (await one.json())["total"] == 1

    missing = await api.get("/api/v1/jobs/nope", headers=auth())
    assert missing.status == 404 and "nope" in (await missing.json())["detail"]


async def test_enqueue_uses_queue_config_defaults(api: TestClient, redis: Redis, pg: Any) -> None:
    put = await api.put(
        "/api/v1/jobs/queues/reports/config",
        json={"maxAttempts": 7, "backoffMs": 250, "timeoutS": 42},
        headers=auth("admin"),
    )
    assert put.status == 200, await put.text()
    resp = await api.post(
        "/api/v1/jobs",
        json={"queue": "reports", "name": "build-report", "data": {"x": 1}, "priority": 5},
        headers=auth("operator"),
    )
    body = await resp.json()
    assert resp.status == 201, body
    assert body["status"] == "waiting" and body["maxAttempts"] == 7 and body["priority"] == 5
    assert await redis.zscore(queue_key("reports"), body["id"]) is not None
    (added,) = [e for e in await events(redis) if e.type is EventType.ADDED]
    assert added.job_id == body["id"] and added.attempt == 1
    assert added.fields["options"]["backoff_ms"] == 250
    assert added.fields["options"]["timeout_s"] == 42
    assert added.fields["by"] == "operator-user"

    delayed = await api.post(
        "/api/v1/jobs",
        json={"queue": "reports", "name": "later", "delayMs": 60_000, "maxAttempts": 1},
        headers=auth("operator"),
    )
    d = await delayed.json()
    assert d["status"] == "delayed" and d["maxAttempts"] == 1 and d["runAt"]

    dup = await api.post(
        "/api/v1/jobs",
        json={"queue": "reports", "name": "x", "jobId": body["id"]},
        headers=auth("operator"),
    )
    assert dup.status == 409
    audit = await pg.fetch("SELECT action, outcome FROM audit_log ORDER BY id")
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("queues.config_create", "ok"),
        ("jobs.enqueue", "ok"),
        ("jobs.enqueue", "ok"),
        ("jobs.enqueue", "refused"),
    ]


async def test_enqueue_from_template(api: TestClient, redis: Redis, pg: Any) -> None:
    tid = await pg.fetchval(
        "INSERT INTO job_templates (name, queue, task, data, priority, max_attempts)"
        " VALUES ('daily', 'reports', 'build-report', '{\"kind\": \"daily\"}', 9, 4) RETURNING id"
    )
    resp = await api.post("/api/v1/jobs", json={"templateId": tid}, headers=auth("operator"))
    body = await resp.json()
    assert resp.status == 201, body
    assert body["queue"] == "reports" and body["jobName"] == "build-report"
    assert body["priority"] == 9 and body["maxAttempts"] == 4
    (added,) = await events(redis)
    assert added.fields["data"] == {"kind": "daily"}
    assert added.fields["options"]["template_id"] == tid
    missing = await api.post("/api/v1/jobs", json={"templateId": "nope"}, headers=auth("operator"))
    assert missing.status == 422 and "templateId" in (await missing.json())["detail"]


async def test_bulk_enqueue(api: TestClient, redis: Redis) -> None:
    jobs = [{"queue": "bulkq", "name": "noop", "data": {"i": i}} for i in range(250)]
    jobs.append({"queue": "bulkq", "name": "noop", "jobId": "fixed-1"})
    first = await api.post("/api/v1/jobs/bulk", json={"jobs": jobs}, headers=auth("operator"))
    body = await first.json()
    assert first.status == 201, body
    assert body["counts"] == {"queued": 251}
    assert await redis.zcard(queue_key("bulkq")) == 251
    again = await api.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [{"queue": "bulkq", "name": "noop", "jobId": "fixed-1"}]},
        headers=auth("operator"),
    )
    assert (await again.json())["items"][0]["outcome"] == "duplicate"
    too_many = await api.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [{"queue": "q", "name": "n"}] * 1001},
        headers=auth("operator"),
    )
    assert too_many.status == 422 and "jobs" in (await too_many.json())["detail"]


async def test_priority_orders_the_queue(api: TestClient, redis: Redis) -> None:
    for p in (0, 50):
        await api.post(
            "/api/v1/jobs",
            json={"queue": "pq", "name": "n", "priority": p, "jobId": f"p{p}"},
            headers=auth("operator"),
        )
    assert await redis.zrange(queue_key("pq"), 0, -1) == [b"p50", b"p0"]
    high = await redis.zscore(queue_key("pq"), "p50")
    low = await redis.zscore(queue_key("pq"), "p0")
    assert high is not None and low is not None and low - high > 40 * PRIORITY_WEIGHT_MS


async def test_bulk_retry_with_mixed_states(api: TestClient, redis: Redis, pg: Any) -> None:
    failed = job_row(status="failed", attempts=3, queue="q1", priority=4, data={"k": "v"})
    # cancelled before it ever ran: no run, but the cancel is recorded as attempt 1
    cancelled = job_row(status="cancelled", attempts=0, queue="q1", version=16 + 3)
    completed = job_row(status="completed", queue="q1")
    waiting = job_row(status="waiting", queue="q1")
    await seed(pg, [failed, cancelled, completed, waiting])
    ids = [failed["id"], cancelled["id"], completed["id"], waiting["id"], "ghost", failed["id"]]
    resp = await api.post("/api/v1/jobs/bulk/retry", json={"jobIds": ids}, headers=auth("operator"))
    body = await resp.json()
    assert resp.status == 200, body
    outcomes = {r["id"]: r for r in body["results"]}
    assert [r["id"] for r in body["results"]] == ids[:5]  # duplicates folded, order kept
    assert outcomes[failed["id"]]["outcome"] == "retried"
    assert outcomes[failed["id"]]["status"] == "waiting"
    assert outcomes[cancelled["id"]]["outcome"] == "retried"
    assert outcomes[completed["id"]]["outcome"] == "skipped"
    assert "completed" in outcomes[completed["id"]]["reason"]
    assert outcomes[waiting["id"]]["outcome"] == "skipped"
    assert outcomes["ghost"]["outcome"] == "not_found"
    assert body["counts"]["retried"] == 2 and body["counts"]["skipped"] == 2
    assert body["counts"]["not_found"] == 1 and body["total"] == 5

    added = {e.job_id: e for e in await events(redis) if e.type is EventType.ADDED}
    assert added[failed["id"]].attempt == 4  # attempt_offset = attempts so far
    assert added[failed["id"]].fields["data"] == {"k": "v"}
    assert added[failed["id"]].fields["priority"] == 4
    assert added[cancelled["id"]].attempt == 2  # newer than the cancel, or it'd be ignored
    # Retrying again while it is queued in Redis is refused (the row still says failed).
    single = await api.post(f"/api/v1/jobs/{failed['id']}/retry", headers=auth("operator"))
    assert single.status == 409
    audit = await pg.fetchrow("SELECT * FROM audit_log WHERE action = 'jobs.bulk_retry'")
    assert audit["outcome"] == "partial" and audit["targets"] == ids[:5]
    assert audit["actor"] == "operator-user" and "operator" in audit["roles"]


async def test_bulk_cancel_with_mixed_states(api: TestClient, redis: Redis, pg: Any) -> None:
    # Real queued jobs, enqueued through the API, with rows as the recorder would write them.
    queued = []
    for i in range(2):
        resp = await api.post(
            "/api/v1/jobs", json={"queue": "cq", "name": "n", "jobId": f"c{i}"}, headers=auth()
        )
        assert resp.status == 201
        queued.append(job_row(id=f"c{i}", status="waiting", queue="cq", version=16))
    gone = job_row(status="active", queue="cq")  # row says active, Redis no longer has it
    done = job_row(status="completed", queue="cq")
    await seed(pg, [*queued, gone, done])
    ids = ["c0", "c1", gone["id"], done["id"], "ghost"]
    resp = await api.post("/api/v1/jobs/bulk/cancel", json={"jobIds": ids}, headers=auth())
    body = await resp.json()
    outcomes = {r["id"]: r["outcome"] for r in body["results"]}
    assert outcomes == {
        "c0": "cancelled",
        "c1": "cancelled",
        gone["id"]: "skipped",
        done["id"]: "skipped",
        "ghost": "not_found",
    }
    assert await redis.zcard(queue_key("cq")) == 0
    cancelled = [e for e in await events(redis) if e.type is EventType.CANCELLED]
    assert sorted(e.job_id for e in cancelled) == ["c0", "c1"]
    assert all(e.fields["by"] == "admin-user" for e in cancelled)

    single = await api.post(f"/api/v1/jobs/{done['id']}/cancel", headers=auth())
    assert single.status == 409 and "completed" in (await single.json())["detail"]


async def test_bulk_ids_validation(api: TestClient) -> None:
    for body in ({"jobIds": "a,b"}, {"jobIds": []}, {"jobIds": ["x"] * 1001}, {}, [1]):
        resp = await api.post("/api/v1/jobs/bulk/retry", json=body, headers=auth())
        problem = await resp.json()
        assert resp.status == 422, body
        assert "jobIds" in problem["detail"] or "body" in problem["detail"]
    resp = await api.post("/api/v1/jobs/bulk/retry", data=b"{not json", headers=auth())
    assert resp.status == 422 and "JSON" in (await resp.json())["detail"]


async def test_unstorable_text_is_refused(api: TestClient) -> None:
    """Postgres stores neither NUL characters nor unpaired surrogates: a clear 422."""
    for raw in (
        b'{"queue": "q", "name": "n", "data": {"x": "a\\u0000b"}}',
        b'{"queue": "q", "name": "n", "data": {"\\ud800": 1}}',
        b'{"jobIds": ["\\udbda"]}',
    ):
        path = "/api/v1/jobs/bulk/cancel" if b"jobIds" in raw else "/api/v1/jobs"
        resp = await api.post(
            path, data=raw, headers={**auth(), "Content-Type": "application/json"}
        )
        assert resp.status == 422, raw
        assert "NUL" in (await resp.json())["detail"]
    ok = await api.post(
        "/api/v1/jobs",
        data=b'{"queue": "q", "name": "n", "data": {"path": "C:\\\\u0000dir"}}',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert ok.status == 201  # a literal backslash-u is fine
    emoji = await api.post(
        "/api/v1/jobs",
        data=b'{"queue": "q", "name": "n", "data": {"e": "\\ud83d\\ude00"}}',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert emoji.status == 201  # a surrogate pair is one valid character
    resp = await api.get("/api/v1/jobs/search", params={"search": "a\x00"}, headers=auth())
    assert resp.status == 422


async def test_reusing_a_recorded_job_id_is_refused(api: TestClient, redis: Redis, pg: Any) -> None:
    # Queue b's job, cancelled: its Redis keys are gone but its row (and history) remain.
    (old,) = await seed(
        pg, [job_row(id="invoice-42", queue="b", status="cancelled", cancelled_by="admin-user")]
    )
    operator_a = auth("operator", queues=["a"])
    resp = await api.post(
        "/api/v1/jobs", json={"queue": "a", "name": "noop", "jobId": "invoice-42"},
        headers=operator_a,
    )  # fmt: skip
    body = await resp.json()
    assert resp.status == 409, body
    assert resp.content_type == "application/problem+json"
    assert "not available" in body["detail"] and "retry" not in body["detail"]
    assert "queue" not in body["detail"] and "cancel" not in body["detail"]  # nothing more
    bulk = await api.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [
            {"queue": "a", "name": "noop", "jobId": "invoice-42"},
            {"queue": "a", "name": "noop", "jobId": "invoice-43"},
        ]},
        headers=operator_a,
    )  # fmt: skip
    items = (await bulk.json())["items"]
    assert bulk.status == 201
    assert [i["outcome"] for i in items] == ["duplicate", "queued"]
    assert await redis.zrange(queue_key("a"), 0, -1) == [b"invoice-43"]
    assert [e.job_id for e in await events(redis)] == ["invoice-43"]
    row = await pg.fetchrow("SELECT queue, status, data FROM jobs WHERE id = 'invoice-42'")
    assert (row["queue"], row["status"], row["data"]) == ("b", "cancelled", old["data"])


async def test_a_retry_of_one_attempt_runs_once(api: TestClient, redis: Redis, pg: Any) -> None:
    (row,) = await seed(pg, [job_row(status="failed", attempts=1, queue="rq")])
    first = await api.post(f"/api/v1/jobs/{row['id']}/retry", headers=auth("operator"))
    assert first.status == 200 and (await first.json())["outcome"] == "retried"
    # The retried run finishes before the recorder catches up: its job hash says done (kept
    # a while), the row still says failed (attempt 1). A retry from that row must not queue
    # attempt 2 again.
    await redis.zrem(queue_key("rq"), row["id"])
    await redis.hset(job_key(row["id"]), "state", "done")
    resp = await api.post(
        "/api/v1/jobs/bulk/retry", json={"jobIds": [row["id"]]}, headers=auth("operator")
    )
    (second,) = (await resp.json())["results"]
    assert second["outcome"] == "skipped"
    assert second["reason"] == "a retry of this job is already queued or running"
    single = await api.post(f"/api/v1/jobs/{row['id']}/retry", headers=auth("operator"))
    assert single.status == 409
    assert "already queued or running" in (await single.json())["detail"]
    added = [e for e in await events(redis) if e.type is EventType.ADDED]
    assert [e.attempt for e in added] == [2]
    assert await redis.hget(job_key(row["id"]), "state") == b"done"  # the run untouched
    # Once the recorder has the retried attempt's end, the next retry is a new claim.
    await pg.execute("UPDATE jobs SET attempts = 2, version = 2 * 16 + 3 WHERE id = $1", row["id"])
    third = await api.post(f"/api/v1/jobs/{row['id']}/retry", headers=auth("operator"))
    assert third.status == 200


async def test_retries_back_to_back_queue_one_job(api: TestClient, redis: Redis, pg: Any) -> None:
    (row,) = await seed(pg, [job_row(status="failed", attempts=1, queue="rq2")])
    outcomes = []
    for _ in range(2):
        resp = await api.post(
            "/api/v1/jobs/bulk/retry", json={"jobIds": [row["id"]]}, headers=auth("operator")
        )
        outcomes.append((await resp.json())["results"][0])
    assert [o["outcome"] for o in outcomes] == ["retried", "skipped"]
    assert outcomes[1]["reason"] == "a retry of this job is already queued or running"
    assert await redis.zrange(queue_key("rq2"), 0, -1) == [row["id"].encode()]
