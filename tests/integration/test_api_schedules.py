"""Templates and schedules through the API: CRUD, validation, scope, run-now, history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from jobdeck.queues import queue_key
from redis.asyncio import Redis

from tests.support.api import auth
from tests.support.scheduling import SEED_BODY

TEMPLATES = "/api/v1/jobs/templates"
SCHEDULES = "/api/v1/jobs/schedules"


async def make_template(api: TestClient, **over: Any) -> dict[str, Any]:
    body = {"name": "price-update", "queue": "prices", "jobName": "price-file-parser"}
    body.update(over)
    resp = await api.post(TEMPLATES, json=body, headers=auth("admin"))
    assert resp.status == 201, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def test_template_crud_and_validation(api: TestClient, pg: Any) -> None:
    t = await make_template(api, data={"path": "prices.csv"}, priority=3)
    assert t["queue"] == "prices" and t["jobName"] == "price-file-parser" and t["schedules"] == 0
    assert t["maxAttempts"] == 3 and t["createdBy"] == "admin-user"

    dup = await api.post(
        TEMPLATES, json={"name": "price-update", "queue": "q", "jobName": "x"}, headers=auth()
    )
    assert dup.status == 409

    bad = await api.post(TEMPLATES, json={"name": "x", "queue": "bad queue!"}, headers=auth())
    assert bad.status == 422
    names = {e["name"] for e in (await bad.json())["errors"]}
    assert {"queue", "jobName"} <= names

    denied = await api.post(
        TEMPLATES, json={"name": "y", "queue": "q", "jobName": "x"}, headers=auth("operator")
    )
    assert denied.status == 403

    put = await api.put(
        f"{TEMPLATES}/{t['id']}",
        json={"name": "price-update", "queue": "prices", "jobName": "other", "maxAttempts": 5},
        headers=auth(),
    )
    assert put.status == 200 and (await put.json())["jobName"] == "other"

    listed = await (await api.get(TEMPLATES + "?queue=prices", headers=auth("viewer"))).json()
    assert [i["id"] for i in listed["items"]] == [t["id"]] and listed["total"] == 1
    other = await api.get(f"{TEMPLATES}/{t['id']}", headers=auth("viewer", queues=["emails"]))
    assert other.status == 404
    hidden = await (await api.get(TEMPLATES, headers=auth("viewer", queues=["emails"]))).json()
    assert hidden["items"] == []

    actions = {r["action"] for r in await pg.fetch("SELECT action FROM audit_log")}
    assert {"templates.create", "templates.update"} <= actions


async def test_seed_schedule_body_verbatim(api: TestClient, pg: Any) -> None:
    await pg.execute(
        "INSERT INTO job_templates (id, name, queue, task) VALUES"
        " ('550e8400-e29b-41d4-a716-446655440000', 'analytics', 'analytics', 'refresh')"
    )
    resp = await api.post(SCHEDULES, json=SEED_BODY, headers=auth())
    assert resp.status == 201, await resp.text()
    s = await resp.json()
    assert s["templateId"] == "550e8400-e29b-41d4-a716-446655440000"
    assert s["cronDescription"] == "At 02:00 every day (America/New_York)"
    assert s["overlapPolicy"] == "skip" and s["catchUpPolicy"] == "once"
    assert s["maxConsecutiveFailures"] == 5 and s["isEnabled"] is True
    assert len(s["nextRuns"]) == 5
    first = datetime.fromisoformat(s["nextRunAt"])
    assert first > datetime.now(UTC)
    local = datetime.fromisoformat(s["nextRunAtLocal"])
    assert (local.hour, local.minute) == (2, 0) and local == first
    assert s["runs"] == {"fired": 0, "skipped": 0, "missed": 0, "failedToEnqueue": 0}

    preview = await (await api.get(f"{SCHEDULES}/{s['id']}?preview=50", headers=auth())).json()
    assert len(preview["nextRuns"]) == 50
    too_many = await api.get(f"{SCHEDULES}/{s['id']}?preview=51", headers=auth())
    assert too_many.status == 422
    assert (await too_many.json())["errors"][0]["name"] == "preview"


async def test_template_by_name_and_validation(api: TestClient) -> None:
    await make_template(api, name="price-update-template-id")
    body = {
        "name": "Hourly Price Update",
        "templateId": "price-update-template-id",
        "cronExpression": "0 * * * *",
        "timezone": "UTC",
        "isEnabled": True,
    }
    resp = await api.post(SCHEDULES, json=body, headers=auth())
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["queue"] == "prices"

    cases = [
        ({"cronExpression": "61 * * * *"}, "cronExpression"),
        ({"cronExpression": "* * *"}, "cronExpression"),
        ({"cronExpression": "@reboot"}, "cronExpression"),
        ({"cronExpression": "0 0 30 2 *"}, "cronExpression"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"templateId": "nope"}, "templateId"),
        ({"overlapPolicy": "sometimes"}, "overlapPolicy"),
        ({"catchUpWindowS": 86_401}, "catchUpWindowS"),
    ]
    for change, field in cases:
        resp = await api.post(SCHEDULES, json={**body, "name": "x", **change}, headers=auth())
        assert resp.status == 422, (change, await resp.text())
        problem = await resp.json()
        assert problem["errors"][0]["name"] == field, problem
    ok = await api.post(
        SCHEDULES,
        json={**body, "name": "secs", "cronExpression": "*/5 * * * * *"},
        headers=auth(),
    )
    assert ok.status == 201
    alias = await api.post(
        SCHEDULES, json={**body, "name": "alias", "cronExpression": "@daily"}, headers=auth()
    )
    assert (await alias.json())["cronDescription"].startswith("At 00:00 every day")


async def test_update_pause_resume_scope_and_roles(api: TestClient, pg: Any) -> None:
    await make_template(api)
    s = await (
        await api.post(
            SCHEDULES,
            json={"name": "n", "templateId": "price-update", "cronExpression": "0 3 * * *"},
            headers=auth(),
        )
    ).json()
    sid = s["id"]
    put = await api.put(
        f"{SCHEDULES}/{sid}",
        json={"timezone": "Europe/Berlin", "overlapPolicy": "queue_one", "jitterS": 30},
        headers=auth(),
    )
    body = await put.json()
    assert put.status == 200 and body["timezone"] == "Europe/Berlin"
    assert body["overlapPolicy"] == "queue_one" and body["cronExpression"] == "0 3 * * *"
    assert datetime.fromisoformat(body["nextRunAtLocal"]).hour == 3

    assert (await api.put(f"{SCHEDULES}/{sid}", json={}, headers=auth("operator"))).status == 403
    paused = await api.post(f"{SCHEDULES}/{sid}/pause", headers=auth("operator"))
    p = await paused.json()
    assert p["isEnabled"] is False and p["nextRunAt"] is None
    assert p["disabledReason"] == "paused by operator-user"
    await pg.execute("UPDATE job_schedules SET consecutive_failures = 4 WHERE id = $1", sid)
    resumed = await (await api.post(f"{SCHEDULES}/{sid}/resume", headers=auth("operator"))).json()
    assert resumed["isEnabled"] and resumed["nextRunAt"] and resumed["consecutiveFailures"] == 0
    assert resumed["disabledReason"] is None

    outside = auth("admin", queues=["emails"])
    for method, path in [
        ("GET", f"{SCHEDULES}/{sid}"),
        ("GET", f"{SCHEDULES}/{sid}/runs"),
        ("POST", f"{SCHEDULES}/{sid}/run"),
        ("POST", f"{SCHEDULES}/{sid}/pause"),
        ("DELETE", f"{SCHEDULES}/{sid}"),
    ]:
        resp = await api.request(method, path, headers=outside)
        assert resp.status == 404, (method, path)
    listed = await (await api.get(SCHEDULES, headers=outside)).json()
    assert listed["items"] == [] and listed["total"] == 0
    mine = await (await api.get(SCHEDULES + "?queue=prices&enabled=true", headers=auth())).json()
    assert [i["id"] for i in mine["items"]] == [sid]

    actions = [r["action"] for r in await pg.fetch("SELECT action FROM audit_log ORDER BY id")]
    for a in ("schedules.create", "schedules.update", "schedules.pause", "schedules.resume"):
        assert a in actions

    queues = await (await api.get("/api/v1/jobs/queues", headers=auth("viewer"))).json()
    (prices,) = [q for q in queues["items"] if q["name"] == "prices"]
    assert prices["schedules"][0]["id"] == sid and prices["schedules"][0]["nextRunAt"]

    deleted = await api.delete(f"{SCHEDULES}/{sid}", headers=auth())
    assert deleted.status == 200
    assert (await api.get(f"{SCHEDULES}/{sid}", headers=auth())).status == 404


async def test_run_now_and_history(api: TestClient, pg: Any, redis: Redis) -> None:
    await make_template(api, data={"path": "a.csv", "mode": "full"})
    s = await (
        await api.post(
            SCHEDULES,
            json={
                "name": "n",
                "templateId": "price-update",
                "cronExpression": "0 3 * * *",
                "data": {"mode": "delta"},
                "isEnabled": False,
            },
            headers=auth(),
        )
    ).json()
    viewer = await api.post(f"{SCHEDULES}/{s['id']}/run", headers=auth("viewer"))
    assert viewer.status == 403
    resp = await api.post(f"{SCHEDULES}/{s['id']}/run", headers=auth("operator"))
    assert resp.status == 202, await resp.text()
    ran = await resp.json()
    assert ran["run"]["trigger"] == "manual" and ran["run"]["outcome"] == "enqueued"
    assert await redis.zscore(queue_key("prices"), ran["jobId"]) is not None

    runs = await (await api.get(f"{SCHEDULES}/{s['id']}/runs", headers=auth("viewer"))).json()
    assert [r["jobId"] for r in runs["items"]] == [ran["jobId"]]
    got = await (await api.get(f"{SCHEDULES}/{s['id']}", headers=auth())).json()
    assert got["lastJobId"] == ran["jobId"] and got["runs"]["fired"] == 1


async def test_template_delete_refused_then_forced(api: TestClient, pg: Any) -> None:
    t = await make_template(api)
    s = await (
        await api.post(
            SCHEDULES,
            json={"name": "n", "templateId": t["id"], "cronExpression": "@hourly"},
            headers=auth(),
        )
    ).json()
    refused = await api.delete(f"{TEMPLATES}/{t['id']}", headers=auth())
    assert refused.status == 409
    assert (await refused.json())["schedules"] == [s["id"]]
    forced = await api.delete(f"{TEMPLATES}/{t['id']}?force=true", headers=auth())
    assert forced.status == 200 and (await forced.json())["disabledSchedules"] == [s["id"]]
    got = await (await api.get(f"{SCHEDULES}/{s['id']}", headers=auth())).json()
    assert got["isEnabled"] is False and got["templateId"] is None
    assert "was deleted" in got["disabledReason"]
    resume = await api.post(f"{SCHEDULES}/{s['id']}/resume", headers=auth())
    assert resume.status == 422
    assert (await resume.json())["errors"][0]["name"] == "templateId"
