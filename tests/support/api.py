"""Helpers for the api service's tests: an in-process app client, tokens, seeded job rows."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.auth import mint_token
from jobdeck.settings import Settings
from jobdeck_api.app import build_app
from jobdeck_api.security import RateLimits

# 32+ bytes: PyJWT warns (an error under pytest) about shorter HMAC keys.
SECRET = "jobdeck-api-test-secret-0123456789abcdef"
BASE = datetime(2024, 3, 1, tzinfo=UTC)
_seq = itertools.count()

JOB_COLUMNS = (
    "id", "queue", "name", "status", "priority", "data", "options", "result", "error_type",
    "error_message", "progress", "attempts", "max_attempts", "worker", "created_at", "run_at",
    "started_at", "finished_at", "duration_ms", "template_id", "version", "added_attempt",
)  # fmt: skip


def token(role: str = "admin", queues: Iterable[str] | str = "*", sub: str | None = None) -> str:
    return mint_token(SECRET, sub or f"{role}-user", [role], queues)


def auth(
    role: str = "admin", queues: Iterable[str] | str = "*", sub: str | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, queues, sub)}"}


def job_row(**over: Any) -> dict[str, Any]:
    """A plausible job row; timing fields follow the status unless given."""
    n = next(_seq)
    status = over.get("status", "completed")
    created = over.get("created_at", BASE + timedelta(minutes=n))
    row: dict[str, Any] = {
        "id": f"job-{n:05d}-{uuid.uuid4().hex[:6]}",
        "queue": "default",
        "name": "noop",
        "status": status,
        "priority": 0,
        "data": {"n": n},
        "options": {"backoff_ms": 1000, "timeout_s": 300.0},
        "result": None,
        "error_type": None,
        "error_message": None,
        "progress": 0.0,
        "attempts": 0 if status in ("waiting", "delayed") else 1,
        "max_attempts": 3,
        "worker": None,
        "created_at": created,
        "run_at": None,
        "started_at": None,
        "finished_at": None,
        "duration_ms": None,
        "template_id": None,
        "version": 16,
        "added_attempt": 1,  # the recorder has seen the job's `added` event
    }
    if status in ("active", "completed", "failed") or (status == "cancelled" and "started" in over):
        row["started_at"] = created + timedelta(seconds=1)
    if status in ("completed", "failed", "cancelled"):
        duration = over.get("duration_ms", 1000 + n)
        start = row["started_at"] or created
        row["finished_at"] = start + timedelta(milliseconds=duration or 0)
        row["duration_ms"] = duration if row["started_at"] else None
    if status == "failed":
        row["error_type"], row["error_message"] = "ValueError", "boom"
    if status == "completed":
        row["result"] = {"ok": True}
    over.pop("started", None)
    row.update(over)
    return row


async def seed(pool: asyncpg.Pool, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    placeholders = ", ".join(f"${i}" for i in range(1, len(JOB_COLUMNS) + 1))
    await pool.executemany(
        f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({placeholders})",
        [tuple(r[c] for c in JOB_COLUMNS) for r in rows],
    )
    await pool.execute("SELECT widen_job_spans()")  # as the recorder would (migration 0020)
    return rows


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return replace(settings, jwt_secret=SECRET)


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[TestClient]:
    app = build_app(api_settings, RateLimits(enabled=False))
    async with TestClient(TestServer(app)) as client:
        yield client
