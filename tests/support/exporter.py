"""Helpers for the exporter's tests: an in-process exporter, export requests, downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openpyxl
import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_exporter.app import build_app
from jobdeck_exporter.config import ExporterConfig

from tests.support.api import auth
from tests.support.processes import wait_for

EXPORT = "/api/v1/jobs/export"


def exporter_config(tmp: Path, **over: Any) -> ExporterConfig:
    """Short leases and intervals, so takeovers and sweeps happen within a test."""
    base = ExporterConfig(
        lease_ms=1_500,
        progress_interval_ms=50,
        janitor_interval_ms=60_000,
        url_secret="exporter-test-url-secret",
        spool_dir=str(tmp / "spool"),
    )
    return replace(base, **over)


@pytest.fixture
def export_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    return replace(api_settings, storage_url=f"file://{tmp_path / 'exports'}")


@pytest.fixture
async def exporter(export_settings: Settings, tmp_path: Path) -> AsyncIterator[TestClient]:
    app = build_app(replace(export_settings, instance="exporter-a"), exporter_config(tmp_path))
    async with TestClient(TestServer(app)) as client:
        yield client


async def request_export(
    api: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    resp = await api.post(EXPORT, json=body, headers=headers or auth())
    return resp.status, await resp.json()


async def finished_export(
    api: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Request an export and follow it to its end (200 at once, or via its status URL)."""
    headers = headers or auth()
    status, info = await request_export(api, body, headers)
    assert status in (200, 202), info
    state: dict[str, Any] = dict(info)

    async def ended() -> bool:
        resp = await api.get(info["statusUrl"], headers=headers)
        state.update(await resp.json())
        return state["status"] in ("done", "failed")

    if info["status"] not in ("done", "failed"):
        await wait_for(ended, timeout=30, what="the export to end")
    return state


def path_of(url: str) -> str:
    """The path and query of a download URL (local storage URLs are relative)."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


async def download(exporter: TestClient, url: str) -> bytes:
    resp = await exporter.get(path_of(url))
    body = await resp.read()
    assert resp.status == 200, body[:500]
    return body


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def read_json(data: bytes) -> list[dict[str, Any]]:
    parsed = json.loads(data)
    assert isinstance(parsed, list)
    return parsed


def read_ndjson(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def read_xlsx(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data), read_only=False)
