"""Authentication and authorization: bad tokens, the role matrix, queue scope."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from tests.support.api import SECRET, auth, job_row, seed


def _none_alg_token() -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"sub": "mallory", "roles": ["admin"], "queues": "*", "exp": int(time.time()) + 600}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS = {
    "missing": None,
    "not bearer": "Basic dXNlcjpwYXNz",
    "garbage": "Bearer not.a.jwt",
    "expired": "Bearer "
    + jwt.encode(
        {"sub": "a", "roles": ["admin"], "queues": "*", "exp": int(time.time()) - 3600},
        SECRET,
        algorithm="HS256",
    ),
    "forged": "Bearer "
    + jwt.encode(
        {"sub": "a", "roles": ["admin"], "queues": "*", "exp": int(time.time()) + 600},
        "some-other-secret-of-sufficient-length-123",
        algorithm="HS256",
    ),
    "alg none": "Bearer " + _none_alg_token(),
    "no exp": "Bearer "
    + jwt.encode({"sub": "a", "roles": ["admin"], "queues": "*"}, SECRET, algorithm="HS256"),
    "unknown role": "Bearer "
    + jwt.encode(
        {"sub": "a", "roles": ["god"], "queues": "*", "exp": int(time.time()) + 600},
        SECRET,
        algorithm="HS256",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_are_401_with_challenge(api: TestClient, case: str) -> None:
    header = BAD_TOKENS[case]
    headers = {"Authorization": header} if header else {}
    resp = await api.get("/api/v1/jobs/search", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 401 and body["detail"]


async def test_health_and_docs_need_no_token(api: TestClient) -> None:
    for path in ("/healthz", "/metrics", "/api/docs/openapi.json", "/api/docs"):
        resp = await api.get(path)
        assert resp.status == 200, path


# (method, path, body, minimum role)
MATRIX = [
    ("GET", "/api/v1/jobs/search", None, "viewer"),
    ("GET", "/api/v1/jobs/queues", None, "viewer"),
    ("POST", "/api/v1/jobs", {"queue": "q1", "name": "noop"}, "operator"),
    ("POST", "/api/v1/jobs/bulk", {"jobs": [{"queue": "q1", "name": "noop"}]}, "operator"),
    ("POST", "/api/v1/jobs/bulk/retry", {"jobIds": ["x"]}, "operator"),
    ("POST", "/api/v1/jobs/bulk/cancel", {"jobIds": ["x"]}, "operator"),
    ("POST", "/api/v1/jobs/queues/q1/pause", None, "operator"),
    ("POST", "/api/v1/jobs/queues/q1/resume", None, "operator"),
    ("PUT", "/api/v1/jobs/queues/q1/config", {"concurrency": 3}, "admin"),
    ("GET", "/api/v1/audit", None, "admin"),
]
ROLES = ["viewer", "operator", "admin"]


@pytest.mark.parametrize(("method", "path", "body", "needed"), MATRIX)
async def test_role_matrix(api: TestClient, method: str, path: str, body: Any, needed: str) -> None:
    for role in ROLES:
        resp = await api.request(method, path, json=body, headers=auth(role))
        allowed = ROLES.index(role) >= ROLES.index(needed)
        if allowed:
            assert resp.status in (200, 201), (role, path, await resp.text())
        else:
            assert resp.status == 403, (role, path, await resp.text())
            assert needed in (await resp.json())["detail"]


async def test_denied_commands_are_audited(api: TestClient, pg: Any) -> None:
    resp = await api.post(
        "/api/v1/jobs/bulk/cancel", json={"jobIds": ["a"]}, headers=auth("viewer")
    )
    assert resp.status == 403
    row = await pg.fetchrow("SELECT * FROM audit_log WHERE outcome = 'denied'")
    assert row["actor"] == "viewer-user" and row["action"] == "bulk_cancel"


async def test_jobs_outside_token_queues_are_404(api: TestClient, pg: Any) -> None:
    mine, theirs = job_row(queue="mine"), job_row(queue="theirs", status="failed")
    await seed(pg, [mine, theirs])
    headers = auth("operator", ["mine"])
    assert (await api.get(f"/api/v1/jobs/{mine['id']}", headers=headers)).status == 200
    for path in (f"/api/v1/jobs/{theirs['id']}", f"/api/v1/jobs/{theirs['id']}/logs"):
        resp = await api.get(path, headers=headers)
        assert resp.status == 404
    resp = await api.post(f"/api/v1/jobs/{theirs['id']}/retry", headers=headers)
    assert resp.status == 404
    bulk = await api.post(
        "/api/v1/jobs/bulk/retry", json={"jobIds": [theirs["id"]]}, headers=headers
    )
    assert (await bulk.json())["results"][0]["outcome"] == "not_found"
    enqueue = await api.post("/api/v1/jobs", json={"queue": "theirs", "name": "x"}, headers=headers)
    assert enqueue.status == 403
    pause = await api.post("/api/v1/jobs/queues/theirs/pause", headers=headers)
    assert pause.status == 403
    queues = await (await api.get("/api/v1/jobs/queues", headers=headers)).json()
    assert [q["name"] for q in queues["items"]] == ["mine"]
