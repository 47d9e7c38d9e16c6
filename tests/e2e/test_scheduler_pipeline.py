"""Schedules end to end: API, scheduler, worker and recorder as processes. The seed's two
schedule examples verbatim (the JSON body, and the JS ``fetch`` snippet run by Node) through
the real nginx ingress, against the templates ``make run`` installs; a schedule that fires,
runs and reports its job's status; one that keeps failing and disables itself with one
alert."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from jobdeck.events import EventType, decode
from jobdeck.settings import Settings
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis

from tests.e2e.test_api_pipeline import Stack
from tests.support.api import SECRET, auth, token
from tests.support.ingress import Ingress, ingress_in_front, nginx_binary
from tests.support.node import node_missing, run_page_script
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for
from tests.support.scheduling import SEED_BODY

WORKER_ARGS = ["--tasks", "jobdeck_worker.demo", "--grace", "2"]
WORKER_ARGS += ["--queue", "price-file-parser:2", "--queue", "failing:2"]
SCHEDULES = "/api/v1/jobs/schedules"

pytestmark = pytest.mark.skipif(
    node_missing() or nginx_binary() is None,
    reason="node or nginx missing (make install / make run install them)",
)


@pytest.fixture
async def stack(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> AsyncIterator[Stack]:
    env = settings_env(settings, JOBDECK_JWT_SECRET=SECRET, JOBDECK_LOG_LEVEL="WARNING")
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobdeck_scheduler.demo", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await demo.communicate()
    assert demo.returncode == 0 and b"2 added" in out
    ports = {name: free_port() for name in ("recorder", "worker", "api", "scheduler")}
    procs = [
        ServiceProcess(
            "jobdeck_recorder",
            {**env, "JOBDECK_RECORDER_PORT": str(ports["recorder"])},
            ports["recorder"],
            tmp_path,
        ),
        ServiceProcess(
            "jobdeck_worker",
            {**env, "JOBDECK_WORKER_PORT": str(ports["worker"])},
            ports["worker"],
            tmp_path,
            WORKER_ARGS,
        ),
        ServiceProcess(
            "jobdeck_api",
            {**env, "JOBDECK_API_PORT": str(ports["api"]), "JOBDECK_API_RATE_LIMIT": "off"},
            ports["api"],
            tmp_path,
        ),
        ServiceProcess(
            "jobdeck_scheduler",
            {**env, "JOBDECK_SCHEDULER_PORT": str(ports["scheduler"])},
            ports["scheduler"],
            tmp_path,
        ),
    ]
    for proc in procs:
        service_procs.append(proc.start())
    await asyncio.gather(*(p.wait_ready(timeout=60) for p in procs))
    async with aiohttp.ClientSession() as http:
        yield Stack(procs[2], http)


@pytest.fixture
async def ingress(stack: Stack, tmp_path: Path) -> AsyncIterator[Ingress]:
    """deploy/nginx's config in front of the stack's API, as ``make run`` serves it."""
    async with ingress_in_front(tmp_path / "nginx", api=stack.api.port) as ingress:
        yield ingress


async def seed_examples_verbatim(stack: Stack, ingress: Ingress) -> None:
    async with stack.http.post(
        ingress.url + SCHEDULES, json=SEED_BODY, headers=auth("admin")
    ) as resp:
        created = await resp.json()
        assert resp.status == 201, created
    assert created["jobName"] == "generate-report" and created["priority"] == 5
    assert created["cronDescription"] == "At 02:00 every day (America/New_York)"

    result = await run_page_script(
        "seed-schedule.mjs", ingress.url, token("admin"), [stack.api], timeout=30
    )
    assert result["status"] == 201, result
    body = result["body"]
    assert body["name"] == "Hourly Price Update" and body["queue"] == "price-file-parser"
    assert body["cronDescription"] == "At the start of every hour (UTC)"
    async with stack.http.get(
        ingress.url + SCHEDULES + "?queue=price-file-parser", headers=auth("viewer")
    ) as resp:
        listed = await resp.json()
        assert resp.status == 200, listed
    assert body["name"] in {s["name"] for s in listed["items"]}


async def fires_runs_and_reports_its_status(stack: Stack) -> None:
    s = await stack.call(
        "POST",
        SCHEDULES,
        {
            "name": "every second",
            "templateId": "price-update-template-id",
            "cronExpression": "* * * * * *",
        },
        status=201,
    )
    seen: dict[str, Any] = {}

    async def completed() -> bool:
        seen["s"] = await stack.call("GET", f"{SCHEDULES}/{s['id']}")
        return bool(seen["s"]["lastStatus"] == "completed")

    await wait_for(completed, timeout=60, what=f"a completed run: {seen}")
    paused = await stack.call("POST", f"{SCHEDULES}/{s['id']}/pause")
    assert paused["isEnabled"] is False
    runs = await stack.call("GET", f"{SCHEDULES}/{s['id']}/runs?limit=200")
    enqueued = [r for r in runs["items"] if r["outcome"] == "enqueued"]
    assert enqueued and all(r["lagMs"] is not None for r in enqueued)
    assert "completed" in {r["jobStatus"] for r in enqueued}
    job = await stack.call("GET", f"/api/v1/jobs/{seen['s']['lastJobId']}")
    assert job["scheduleId"] == s["id"] and job["templateId"] == "price-update-template-id"


async def repeated_failures_disable_it_with_one_alert(
    stack: Stack, pg: asyncpg.Pool, redis: Redis
) -> None:
    t = await stack.call(
        "POST",
        "/api/v1/jobs/templates",
        {"name": "always-fails", "queue": "failing", "jobName": "fail", "maxAttempts": 1},
        status=201,
    )
    s = await stack.call(
        "POST",
        SCHEDULES,
        {
            "name": "doomed",
            "templateId": t["id"],
            "cronExpression": "* * * * * *",
            "overlapPolicy": "allow",
            "maxConsecutiveFailures": 3,
        },
        status=201,
    )
    seen: dict[str, Any] = {}

    async def disabled() -> bool:
        seen["s"] = await stack.call("GET", f"{SCHEDULES}/{s['id']}")
        return seen["s"]["isEnabled"] is False

    await wait_for(disabled, timeout=60, what=f"the schedule to disable itself: {seen}")
    assert "consecutive failed runs" in seen["s"]["disabledReason"]
    assert seen["s"]["consecutiveFailures"] >= 3 and seen["s"]["nextRunAt"] is None

    async def alerted() -> bool:
        return not await pg.fetchval(
            "SELECT alert_pending FROM job_schedules WHERE id = $1", s["id"]
        )

    await wait_for(alerted, timeout=20, what="the alert to be published")
    alerts = [decode(f[EVENT_FIELD]) for _, f in await redis.xrange(EVENTS)]
    mine = [a for a in alerts if a.type is EventType.ALERT and a.queue == "failing"]
    assert len(mine) == 1 and mine[0].fields["kind"] == "schedule_disabled"
    audit = await stack.call("GET", "/api/v1/audit?action=schedules.auto_disable")
    assert [e["targets"] for e in audit["items"]] == [[s["id"]]]


async def one_slot_reports_its_job(
    stack: Stack, pg: asyncpg.Pool, template: str, final: str
) -> None:
    """One slot fired by the scheduler: once its job has run, the schedule read and its
    run history show one fired run and the job's final status."""
    s = await stack.call(
        "POST",
        SCHEDULES,
        {"name": f"once {final}", "templateId": template, "cronExpression": "0 0 1 1 *"},
        status=201,
    )
    # Bring its (next January) slot due now: the scheduler fires exactly this one slot.
    await pg.execute("UPDATE job_schedules SET next_run_at = now() WHERE id = $1", s["id"])
    seen: dict[str, Any] = {}

    failures = 1 if final == "failed" else 0

    async def settled() -> bool:
        # lastStatus is the recorder's live view; the scheduler's settle pass folds it
        # into consecutiveFailures within its interval (1 s).
        seen["s"] = await stack.call("GET", f"{SCHEDULES}/{s['id']}")
        return (seen["s"]["lastStatus"], seen["s"]["consecutiveFailures"]) == (final, failures)

    await wait_for(settled, timeout=60, what=f"a {final} run: {seen}")
    read = seen["s"]
    assert read["runs"] == {"fired": 1, "skipped": 0, "missed": 0, "failedToEnqueue": 0}
    runs = (await stack.call("GET", f"{SCHEDULES}/{s['id']}/runs"))["items"]
    assert [(r["outcome"], r["jobId"], r["jobStatus"]) for r in runs] == [
        ("enqueued", read["lastJobId"], final)
    ]
    listed = await stack.call("GET", SCHEDULES + "?limit=200")
    [item] = [i for i in listed["items"] if i["id"] == s["id"]]
    assert item["runs"] == read["runs"] and item["lastStatus"] == final


async def fail_once_template(stack: Stack) -> str:
    body = {"name": "fails-once", "queue": "failing", "jobName": "fail", "maxAttempts": 1}
    return str((await stack.call("POST", "/api/v1/jobs/templates", body, status=201))["id"])


async def test_schedules_end_to_end(
    stack: Stack, ingress: Ingress, pg: asyncpg.Pool, redis: Redis
) -> None:
    """The stories share one stack (starting four services is the slow part)."""
    await asyncio.gather(
        seed_examples_verbatim(stack, ingress),
        fires_runs_and_reports_its_status(stack),
        repeated_failures_disable_it_with_one_alert(stack, pg, redis),
        one_slot_reports_its_job(stack, pg, "price-update-template-id", "completed"),
        one_slot_reports_its_job(stack, pg, await fail_once_template(stack), "failed"),
    )
