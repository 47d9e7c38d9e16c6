"""The API against hostile input: deep or huge JSON, forged cursors, reserved ids, foreign
job ids, malformed request ids, aiohttp's own errors, a client vanishing mid-body."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.streams import EVENTS
from jobdeck_api.app import all_endpoints, build_app
from jobdeck_api.job_command_models import SHADOWED_IDS
from jobdeck_api.routing import MAX_JSON_DEPTH
from jobdeck_api.security import RateLimits

from tests.support.api import auth, job_row, seed

ENQUEUE = "/api/v1/jobs"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


async def problem_of(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    return body


async def test_a_body_nested_a_thousand_levels_is_a_422_not_a_500(api: TestClient) -> None:
    raw = '{"queue": "q", "name": "t", "data": ' + "[" * 1000 + "]" * 1000 + "}"
    resp = await api.post(ENQUEUE, data=raw, headers={**auth("operator"), "Content-Type": "x"})
    body = await problem_of(resp, 422)
    assert "nested" in body["detail"]
    bulk = await api.post("/api/v1/jobs/bulk/retry", data="[" * 5000, headers=auth("operator"))
    assert "nested" in (await problem_of(bulk, 422))["detail"]


async def test_data_too_deep_to_serve_back_is_refused_naming_the_field(
    api: TestClient, redis: Any
) -> None:
    too_deep = {"queue": "q", "name": "t", "data": nested(260)}
    body = await problem_of(await api.post(ENQUEUE, json=too_deep, headers=auth("operator")), 422)
    assert body["errors"][0]["name"].startswith("data")
    assert f"at most {MAX_JSON_DEPTH}" in body["errors"][0]["reason"]
    bulk = {"jobs": [{"queue": "q", "name": "t", "data": nested(100)}]}
    body = await problem_of(
        await api.post("/api/v1/jobs/bulk", json=bulk, headers=auth("operator")), 422
    )
    assert body["errors"][0]["name"].startswith("jobs.0.data")
    assert await redis.xlen(EVENTS) == 0  # nothing queued
    fine = {"queue": "q", "name": "t", "data": nested(MAX_JSON_DEPTH - 2)}
    assert (await api.post(ENQUEUE, json=fine, headers=auth("operator"))).status == 201


@pytest.mark.parametrize("number", ["1e400", "-1e999", "NaN", "Infinity"])
async def test_numbers_json_cannot_carry_back_are_refused(api: TestClient, number: str) -> None:
    raw = '{"queue": "q", "name": "t", "data": {"x": ' + number + "}}"
    resp = await api.post(ENQUEUE, data=raw, headers=auth("operator"))
    await problem_of(resp, 422)


async def test_a_forged_deeply_nested_cursor_is_a_422(api: TestClient) -> None:
    forged = base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")
    resp = await api.get(
        "/api/v1/jobs/search", params={"cursor": forged}, headers=auth("viewer", ["q"])
    )
    assert "cursor" in (await problem_of(resp, 422))["detail"]


@pytest.mark.parametrize("job_id", sorted(SHADOWED_IDS | {"Search"}))
async def test_ids_that_a_static_route_would_shadow_are_refused(
    api: TestClient, job_id: str
) -> None:
    resp = await api.post(
        ENQUEUE, json={"queue": "q", "name": "t", "jobId": job_id}, headers=auth("operator")
    )
    body = await problem_of(resp, 422)
    assert body["errors"][0]["name"] == "jobId" and "reserved" in body["errors"][0]["reason"]


async def test_enqueue_with_a_foreign_jobs_id_tells_nothing_a_get_would_not(
    api: TestClient, pg: Any
) -> None:
    (foreign,) = await seed(pg, [job_row(queue="secret", status="completed")])
    (own,) = await seed(pg, [job_row(queue="mine", status="completed")])
    scoped = auth("operator", ["mine"])
    assert (await api.get(f"/api/v1/jobs/{foreign['id']}", headers=scoped)).status == 404
    answers = []
    for job_id in (foreign["id"], own["id"]):
        resp = await api.post(
            ENQUEUE, json={"queue": "mine", "name": "t", "jobId": job_id}, headers=scoped
        )
        body = await problem_of(resp, 409)
        answers.append(body["detail"].replace(job_id, "<id>"))
    assert answers[0] == answers[1]
    assert "secret" not in answers[0] and "retry" not in answers[0]


async def test_the_audit_log_needs_an_all_queue_admin_and_records_scope(api: TestClient) -> None:
    await api.post("/api/v1/jobs/queues/a/pause", headers=auth("operator", ["a"], sub="ann"))
    scoped = await api.get("/api/v1/audit", headers=auth("admin", ["a"]))
    assert "'*'" in (await problem_of(scoped, 403))["detail"]
    rows = (await (await api.get("/api/v1/audit", headers=auth("admin"))).json())["items"]
    assert rows[0]["actor"] == "ann" and rows[0]["scope"] == ["a"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("trace-123", True),
        ("0f8fa1c2-6f3e-4a8b-9c55-0a1b2c3d4e5f", True),
        ("x" * 65, False),
        ("<script>", False),
        ("a b", False),
        ("", False),
    ],
)
async def test_a_client_request_id_is_kept_only_if_well_formed(
    api: TestClient, given: str, kept: bool
) -> None:
    resp = await api.post("/api/v1/jobs/queues/d/pause", headers={**auth(), "X-Request-Id": given})
    rid = resp.headers["X-Request-Id"]
    assert (rid == given) is kept and 1 <= len(rid) <= 64
    rows = (await (await api.get("/api/v1/audit", headers=auth())).json())["items"]
    assert rows[0]["requestId"] == rid


async def test_aiohttps_own_errors_are_problem_json_without_a_server_version(
    api: TestClient,
) -> None:
    not_found = await api.get("/nothing-here")
    await problem_of(not_found, 404)
    wrong_method = await api.request("PATCH", "/api/v1/jobs/search", headers=auth())
    await problem_of(wrong_method, 405)
    too_large = await api.post(
        ENQUEUE, data=io.BytesIO(b"x" * (2 * 1024 * 1024)), headers=auth("operator")
    )
    await problem_of(too_large, 413)
    too_long = await api.get("/api/v1/jobs/search?search=" + "x" * 70_000, headers=auth())
    await problem_of(too_long, 400)
    for resp in (not_found, wrong_method, too_large, too_long):
        assert resp.headers.get("Server") == "jobdeck"


async def test_a_deployment_may_strip_tracebacks_from_job_detail(
    api_settings: Any, pg: Any
) -> None:
    (row,) = await seed(pg, [job_row(status="failed")])
    await pg.execute(
        "UPDATE jobs SET error_traceback = $2 WHERE id = $1", row["id"], "/srv/worker/tasks.py"
    )
    for show in (True, False):
        app = build_app(api_settings, RateLimits(enabled=False), show_tracebacks=show)
        async with TestClient(TestServer(app)) as client:
            resp = await client.get(f"/api/v1/jobs/{row['id']}", headers=auth())
            detail = await resp.json()
        assert detail["errorTraceback"] == ("/srv/worker/tasks.py" if show else None)


async def test_cors_is_same_origin_unless_origins_are_listed(api_settings: Any) -> None:
    preflight = {"Origin": "https://jobs.example.com", "Access-Control-Request-Method": "GET"}
    for origins in (frozenset(), frozenset({"https://jobs.example.com"})):
        app = build_app(api_settings, RateLimits(enabled=False), cors_origins=origins)
        async with TestClient(TestServer(app)) as client:
            pre = await client.options("/api/v1/jobs/search", headers=preflight)
            get = await client.get(
                "/api/v1/jobs/search", headers={**auth(), "Origin": preflight["Origin"]}
            )
            evil = await client.get(
                "/api/v1/jobs/search", headers={**auth(), "Origin": "https://evil.example"}
            )
        assert "Access-Control-Allow-Origin" not in evil.headers
        if origins:
            assert pre.status == 204 and get.status == 200
            assert get.headers["Access-Control-Allow-Origin"] == "https://jobs.example.com"
        else:
            assert "Access-Control-Allow-Origin" not in pre.headers
            assert "Access-Control-Allow-Origin" not in get.headers


async def test_swagger_ui_calls_no_validator_and_keeps_no_token(api: TestClient) -> None:
    resp = await api.get("/api/docs")
    page = await resp.text()
    assert "validatorUrl: null" in page and "persistAuthorization: false" in page
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


def test_every_static_route_under_jobs_is_a_reserved_id() -> None:
    segments = {
        ep.path.split("/")[4]
        for ep in all_endpoints()
        if ep.path.startswith("/api/v1/jobs/") and not ep.path.split("/")[4].startswith("{")
    }
    assert segments and segments <= SHADOWED_IDS, segments - SHADOWED_IDS
