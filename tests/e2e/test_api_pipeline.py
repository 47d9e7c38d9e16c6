"""The API with a real worker and recorder as processes: enqueue → row appears and
completes; pause/resume obeyed by the worker; cancel of a running job; manual retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jobdeck.settings import Settings

from tests.support.api import SECRET, auth
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for


@dataclass
class Stack:
    api: ServiceProcess
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        async with self.http.request(
            method, self.api.url + path, json=body, headers=auth("admin")
        ) as resp:
            payload = await resp.json()
            assert resp.status == status, payload
            return payload

    async def job(self, job_id: str) -> dict[str, Any] | None:
        async with self.http.get(
            f"{self.api.url}/api/v1/jobs/{job_id}", headers=auth("viewer")
        ) as resp:
            return await resp.json() if resp.status == 200 else None

    async def wait_status(self, job_id: str, *statuses: str, within: float = 30) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            job = await self.job(job_id)
            seen["job"] = job
            return job is not None and job["status"] in statuses

        await wait_for(reached, within, what=f"job {job_id} to be {statuses}: {seen}")
        return seen["job"]  # type: ignore[no-any-return]

    async def enqueue(self, queue: str, name: str, **fields: Any) -> str:
        body = {"queue": queue, "name": name, **fields}
        return str((await self.call("POST", "/api/v1/jobs", body, status=201))["id"])


@pytest.fixture
async def stack(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> AsyncIterator[Stack]:
    env = settings_env(settings, JOBDECK_JWT_SECRET=SECRET, JOBDECK_LOG_LEVEL="WARNING")
    recorder_port, worker_port, api_port = free_port(), free_port(), free_port()
    recorder = ServiceProcess(
        "jobdeck_recorder",
        {**env, "JOBDECK_RECORDER_PORT": str(recorder_port), "JOBDECK_RECORDER_BLOCK_MS": "100"},
        recorder_port,
        tmp_path,
    )
    worker = ServiceProcess(
        "jobdeck_worker",
        {**env, "JOBDECK_WORKER_PORT": str(worker_port)},
        worker_port,
        tmp_path,
        [
            "--tasks",
            "jobdeck_worker.demo",
            "--queue",
            "alpha:4",
            "--queue",
            "beta:4",
            "--grace",
            "2",
        ],
    )
    api = ServiceProcess(
        "jobdeck_api",
        {**env, "JOBDECK_API_PORT": str(api_port), "JOBDECK_API_RATE_LIMIT": "off"},
        api_port,
        tmp_path,
    )
    for proc in (recorder, worker, api):
        service_procs.append(proc.start())
    await asyncio.gather(recorder.wait_ready(), worker.wait_ready(), api.wait_ready())
    async with aiohttp.ClientSession() as http:
        yield Stack(api, http)


@pytest.mark.timeout(120)
async def test_enqueue_pause_resume_cancel_retry_through_the_api(stack: Stack) -> None:
    # Enqueue → the recorder writes the row → the worker completes it.
    job_id = await stack.enqueue("alpha", "echo", data={"hello": "world"})
    done = await stack.wait_status(job_id, "completed")
    assert done["result"] == {"hello": "world"} and done["attempts"] == 1

    # Pause alpha: a job queued there waits while beta keeps running.
    assert (await stack.call("POST", "/api/v1/jobs/queues/alpha/pause"))["paused"] is True
    held = await stack.enqueue("alpha", "noop")
    await stack.wait_status(held, "waiting")
    passed = await stack.enqueue("beta", "noop")
    await stack.wait_status(passed, "completed")
    assert (await stack.job(held))["status"] == "waiting"  # type: ignore[index]
    queues = {q["name"]: q for q in (await stack.call("GET", "/api/v1/jobs/queues"))["items"]}
    assert queues["alpha"]["paused"] is True and queues["alpha"]["workers"] >= 1
    await stack.call("POST", "/api/v1/jobs/queues/alpha/resume")
    await stack.wait_status(held, "completed")

    # Cancel a running job: the worker aborts it and the row ends cancelled.
    long = await stack.enqueue("beta", "sleep", data={"seconds": 30, "steps": 300})
    await stack.wait_status(long, "active")
    result = await stack.call("POST", f"/api/v1/jobs/{long}/cancel")
    assert result["outcome"] == "cancelling" and result["status"] == "cancelled"
    cancelled = await stack.wait_status(long, "cancelled")
    assert cancelled["finishedAt"] is not None

    # A failed job retried by hand runs again as its next attempt.
    failing = await stack.enqueue("alpha", "fail", maxAttempts=1)
    failed = await stack.wait_status(failing, "failed")
    assert failed["attempts"] == 1
    bulk = await stack.call(
        "POST", "/api/v1/jobs/bulk/retry", {"jobIds": [failing, done["id"], "ghost"]}
    )
    outcomes = {r["id"]: r["outcome"] for r in bulk["results"]}
    assert outcomes == {failing: "retried", done["id"]: "skipped", "ghost": "not_found"}

    async def second_attempt_failed() -> bool:
        job = await stack.job(failing)
        return job is not None and job["status"] == "failed" and job["attempts"] == 2

    await wait_for(second_attempt_failed, 30, what="the retried job's 2nd attempt")
    audit = await stack.call("GET", "/api/v1/audit?action=jobs.bulk_retry")
    assert audit["items"][0]["outcome"] == "partial"
