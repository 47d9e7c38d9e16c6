"""Exporter replicas as processes: a SIGKILLed exporter's export is finished by another
replica, or failed with a reason once it has lost too many owners; never left running. Its
/metrics count each export by format and outcome, with rows, bytes and time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from jobdeck.settings import Settings
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import BASE, auth, job_row, seed
from tests.support.exporter import finished_export, path_of
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

ROWS = 6_000


async def start_exporter(
    settings: Settings, procs: list[ServiceProcess], tmp: Path, **env: str
) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess(
        "jobdeck_exporter",
        settings_env(
            settings,
            JOBDECK_EXPORTER_PORT=str(port),
            JOBDECK_EXPORTER_LEASE_MS="1500",
            JOBDECK_EXPORTER_URL_SECRET="exporter-process-test-url-secret-0123456789",
            JOBDECK_EXPORTER_SPOOL_DIR=str(tmp / "spool"),
            JOBDECK_LOG_LEVEL="WARNING",
            **env,
        ),
        port,
        tmp,
    ).start()
    procs.append(proc)
    await proc.wait_ready()
    return proc


@pytest.fixture
async def many_jobs(pg: asyncpg.Pool) -> None:
    await seed(
        pg, [job_row(created_at=BASE + timedelta(seconds=i), data={"i": i}) for i in range(ROWS)]
    )


async def running_on(pg: asyncpg.Pool, export_id: str) -> asyncpg.Record | None:
    return await pg.fetchrow(
        "SELECT status, owner, attempts, error FROM exports WHERE id = $1", export_id
    )


async def final_state(pg: asyncpg.Pool, export_id: str) -> asyncpg.Record:
    """The export's row once it is done or failed (no longer pending or running)."""
    rows: list[asyncpg.Record] = []

    async def ended() -> bool:
        row = await running_on(pg, export_id)
        if row is not None and row["status"] in ("done", "failed"):
            rows.append(row)
        return bool(rows)

    await wait_for(ended, timeout=60, what=f"export {export_id} to end")
    return rows[0]


async def kill_mid_export(
    api: TestClient, pg: asyncpg.Pool, victim: ServiceProcess, graceful: bool = False
) -> tuple[str, asyncio.Task[Any]]:
    """Request an Excel export, SIGKILL (or SIGTERM) ``victim`` once it runs it."""
    request = asyncio.create_task(
        api.post("/api/v1/jobs/export", json={"format": "excel", "includeData": True},
                 headers=auth())
    )  # fmt: skip
    found: list[str] = []

    async def claimed() -> bool:
        row = await pg.fetchrow("SELECT id FROM exports WHERE status = 'running'")
        if row is not None:
            found.append(row["id"])
        return bool(found)

    await wait_for(claimed, timeout=20, interval=0.02, what="the export to start")
    if graceful:
        assert await asyncio.to_thread(victim.stop) == 0
    else:
        victim.kill()
    return found[0], request


async def test_a_killed_exporters_export_is_finished_by_another(
    api: TestClient,
    export_settings: Settings,
    pg: asyncpg.Pool,
    many_jobs: None,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    a = await start_exporter(replace(export_settings), service_procs, tmp_path)
    export_id, request = await kill_mid_export(api, pg, a)
    resp = await request
    assert resp.status == 202  # still running when the short wait ended
    b = await start_exporter(export_settings, service_procs, tmp_path)

    row = await final_state(pg, export_id)
    assert row["status"] == "done" and row["attempts"] == 2, dict(row)
    resp = await api.get(f"/api/v1/jobs/exports/{export_id}", headers=auth())
    info = await resp.json()
    assert info["rows"] == ROWS
    async with aiohttp.ClientSession() as http, http.get(b.url + path_of(info["url"])) as got:
        assert got.status == 200
        assert got.headers["Content-Disposition"].endswith('.xlsx"')
        assert len(await got.read()) == info["bytes"]


async def test_an_export_losing_too_many_owners_fails_with_a_reason(
    api: TestClient,
    export_settings: Settings,
    pg: asyncpg.Pool,
    many_jobs: None,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    a = await start_exporter(export_settings, service_procs, tmp_path)
    export_id, request = await kill_mid_export(api, pg, a)
    await request
    await start_exporter(
        export_settings, service_procs, tmp_path, JOBDECK_EXPORTER_MAX_ATTEMPTS="1"
    )

    await final_state(pg, export_id)
    resp = await api.get(f"/api/v1/jobs/exports/{export_id}", headers=auth())
    info = await resp.json()
    assert info["status"] == "failed" and "stopped 1 times" in info["error"], info
    assert info["url"] is None


async def test_sigterm_hands_a_running_export_back_to_another_replica(
    api: TestClient,
    export_settings: Settings,
    pg: asyncpg.Pool,
    many_jobs: None,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    a = await start_exporter(export_settings, service_procs, tmp_path)
    export_id, request = await kill_mid_export(api, pg, a, graceful=True)
    await request
    row = await running_on(pg, export_id)
    assert row is not None and row["status"] == "pending" and row["attempts"] == 0, a.log_tail()
    await start_exporter(export_settings, service_procs, tmp_path)
    row = await final_state(pg, export_id)
    assert row["status"] == "done" and row["attempts"] == 1  # handed back: not counted as lost


async def scrape(proc: ServiceProcess) -> dict[tuple[str, str, str], float]:
    """The exporter's export metrics: (sample, format, outcome) -> value."""
    async with aiohttp.ClientSession() as http, http.get(proc.url + "/metrics") as resp:
        text = await resp.text()
    return {
        (s.name, s.labels.get("format", ""), s.labels.get("outcome", "")): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("jobdeck_exporter_")
        for s in family.samples
        if "le" not in s.labels
    }


async def test_metrics_count_exports_by_format_and_outcome_with_rows_bytes_and_time(
    api: TestClient,
    export_settings: Settings,
    pg: asyncpg.Pool,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    completed = [
        job_row(status="completed", created_at=BASE + timedelta(minutes=i)) for i in range(12)
    ]
    await seed(pg, [*completed, *(job_row(status="failed") for _ in range(30))])
    # The API lets 42 rows through; this exporter holds 20 at most: one export fails.
    proc = await start_exporter(
        export_settings, service_procs, tmp_path, JOBDECK_EXPORT_MAX_ROWS="20"
    )
    before = await scrape(proc)
    assert before[("jobdeck_exporter_running", "", "")] == 0
    done = {}
    for fmt in ("csv", "ndjson", "excel"):
        body = {"format": fmt, "filters": {"status": ["completed"]}}
        done[fmt] = await finished_export(api, body)
        assert done[fmt]["status"] == "done" and done[fmt]["rows"] == 12, done[fmt]
    failed = await finished_export(api, {"format": "json"})
    assert failed["status"] == "failed" and "more than the limit of 20" in failed["error"]

    after = await scrape(proc)
    for fmt, info in done.items():
        assert not any(key[1] == fmt for key in before)  # nothing counted before
        assert after[("jobdeck_exporter_exports_total", fmt, "done")] == 1
        assert after[("jobdeck_exporter_rows_total", fmt, "")] == 12
        assert after[("jobdeck_exporter_bytes_total", fmt, "")] == info["bytes"] > 0
        assert after[("jobdeck_exporter_export_seconds_count", fmt, "")] == 1
        assert after[("jobdeck_exporter_export_seconds_sum", fmt, "")] > 0
        assert after[("jobdeck_exporter_rows_per_second", fmt, "")] > 0
    assert after[("jobdeck_exporter_exports_total", "json", "failed")] == 1
    assert ("jobdeck_exporter_rows_total", "json", "") not in after  # a failed export wrote none
    assert after[("jobdeck_exporter_running", "", "")] == 0
