"""The whole pipeline as processes: producers → Redis → workers → stream → recorder → Postgres."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from jobdeck.events import now_ms
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.settings import Settings
from jobdeck.streams import DEAD_LETTERS, EVENTS
from redis.asyncio import Redis

from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

TASKS = "tests.e2e.pipeline_tasks"
TERMINAL = ("completed", "failed", "cancelled")


def start_recorder(
    settings: Settings, procs: list[ServiceProcess], log_dir: Path
) -> ServiceProcess:
    env = settings_env(
        settings,
        JOBDECK_RECORDER_PORT=str(free_port()),
        JOBDECK_RECORDER_CLAIM_IDLE_MS="1000",
        JOBDECK_RECORDER_CLAIM_INTERVAL_MS="300",
        JOBDECK_RECORDER_BLOCK_MS="200",
    )
    proc = ServiceProcess("jobdeck_recorder", env, int(env["JOBDECK_RECORDER_PORT"]), log_dir)
    procs.append(proc.start())
    return proc


def start_worker(
    settings: Settings,
    procs: list[ServiceProcess],
    log_dir: Path,
    queues: list[str],
    extra_args: list[str] = (),
) -> ServiceProcess:
    port = free_port()
    env = settings_env(settings, JOBDECK_WORKER_PORT=str(port))
    args = ["--tasks", TASKS, *extra_args]
    for queue in queues:
        args += ["--queue", queue]
    proc = ServiceProcess("jobdeck_worker", env, port, log_dir, args)
    procs.append(proc.start())
    return proc


async def count_terminal(pg: asyncpg.Pool) -> int:
    return int(
        await pg.fetchval("SELECT count(*) FROM jobs WHERE status = ANY($1::text[])", TERMINAL)
    )


@pytest.mark.timeout(240)
async def test_thousand_jobs_across_three_queues_land_with_the_right_final_state(
    settings: Settings,
    pg: asyncpg.Pool,
    redis: Redis,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    recorder = start_recorder(settings, service_procs, tmp_path)
    worker = start_worker(settings, service_procs, tmp_path, ["alpha:16", "beta:16", "gamma:8"])
    await asyncio.gather(recorder.wait_ready(), worker.wait_ready())

    queues = ["alpha", "beta", "gamma"]
    specs: list[JobSpec] = []
    kind: dict[str, str] = {}

    def add(category: str, **kw: object) -> JobSpec:
        spec = JobSpec(queue=queues[len(specs) % 3], backoff_ms=20, **kw)  # type: ignore[arg-type]
        specs.append(spec)
        kind[spec.job_id] = category
        return spec

    for n in range(700):
        add("steps", name="steps", data={"n": n, "steps": 2})
    for n in range(150):
        add("flaky", name="flaky", data={"n": n, "succeed_on": 2 + n % 2}, max_attempts=3)
    for n in range(100):
        add("doomed", name="doomed", data={"n": n}, max_attempts=2)
    delayed = [
        add("cancel-delayed", name="steps", data={"n": n}, run_at_ms=now_ms() + 3_600_000)
        for n in range(25)
    ]
    hanging = [add("cancel-active", name="hang", data={"n": n}) for n in range(25)]
    assert len(specs) == 1000

    client = QueueClient(redis, settings.stream_maxlen)
    for start in range(0, len(specs), 250):
        assert all(await client.enqueue_many(specs[start : start + 250], by="e2e"))

    async def running(spec: JobSpec) -> bool:
        status = await pg.fetchval("SELECT status FROM jobs WHERE id = $1", spec.job_id)
        return bool(status == "active")

    for spec in delayed:
        assert (await client.cancel(spec.job_id, spec.queue, spec.name, 1, by="e2e")) == "cancelled"
    for spec in hanging:
        await wait_for(lambda spec=spec: running(spec), 60, what=f"{spec.job_id} active")
        assert (await client.cancel(spec.job_id, spec.queue, spec.name, 1, by="e2e")) == "aborting"

    await wait_for(lambda: _all_done(pg, 1000), 150, 0.2, "every job final in Postgres")

    rows = {r["id"]: r for r in await pg.fetch("SELECT * FROM jobs")}
    assert len(rows) == 1000
    logs = Counter(
        (r["job_id"], r["attempt"]) for r in await pg.fetch("SELECT job_id, attempt FROM job_logs")
    )
    for spec in specs:
        row, category = rows[spec.job_id], kind[spec.job_id]
        assert row["queue"] == spec.queue and row["name"] == spec.name
        if category == "steps":
            assert (row["status"], row["attempts"], row["progress"]) == ("completed", 1, 100)
            assert row["result"] == {"steps": 2, "n": spec.data["n"]}  # type: ignore[index]
            assert logs[(spec.job_id, 1)] == 2
        elif category == "flaky":
            succeed_on = spec.data["succeed_on"]  # type: ignore[index]
            assert (row["status"], row["attempts"]) == ("completed", succeed_on)
            assert all(logs[(spec.job_id, a)] == 1 for a in range(1, succeed_on + 1))
        elif category == "doomed":
            assert (row["status"], row["attempts"]) == ("failed", 2)
            assert row["error_type"] == "ValueError"
            assert "bad input" in row["error_message"] and "Traceback" in row["error_traceback"]
        elif category == "cancel-delayed":
            assert (row["status"], row["attempts"], row["started_at"]) == ("cancelled", 0, None), (
                row
            )
            assert row["cancelled_by"] == "e2e"
        else:
            assert (row["status"], row["attempts"]) == ("cancelled", 1)
            assert row["started_at"] is not None
        if row["status"] in ("completed", "failed"):
            assert row["duration_ms"] is not None and row["duration_ms"] >= 0
            assert row["finished_at"] >= row["started_at"] >= row["created_at"]
        assert row["data"] == spec.data

    # Nothing lost or refused on the way: the group has read and acknowledged everything.
    assert await redis.xlen(DEAD_LETTERS) == 0
    await wait_for(lambda: _group_drained(redis), 30, what="recorder group drained")


async def _all_done(pg: asyncpg.Pool, expected: int) -> bool:
    return await count_terminal(pg) == expected


@pytest.mark.timeout(240)
async def test_killed_worker_and_recorder_lose_no_job_and_duplicate_no_log(
    settings: Settings,
    pg: asyncpg.Pool,
    redis: Redis,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    recorder = start_recorder(settings, service_procs, tmp_path)
    # A short lease on the in-progress lock lets killed jobs run again soon after the kill.
    worker_args = ["--lease", "2"]
    worker = start_worker(settings, service_procs, tmp_path, ["kills:10"], worker_args)
    await asyncio.gather(recorder.wait_ready(), worker.wait_ready())

    specs = [
        JobSpec(queue="kills", name="steps", data={"n": n, "steps": 3, "pause": 0.1})
        for n in range(120)
    ]
    client = QueueClient(redis, settings.stream_maxlen)
    assert all(await client.enqueue_many(specs))

    async def some_active_and_some_done() -> bool:
        counts = dict(await pg.fetch("SELECT status, count(*) FROM jobs GROUP BY status"))
        return counts.get("active", 0) > 0 and counts.get("completed", 0) >= 10

    await wait_for(some_active_and_some_done, 60, what="jobs in flight")
    worker.kill()
    recorder.kill()
    assert await pg.fetchval("SELECT count(*) FROM jobs WHERE status = 'active'") > 0

    recorder = start_recorder(settings, service_procs, tmp_path)
    worker = start_worker(settings, service_procs, tmp_path, ["kills:10"], worker_args)
    await asyncio.gather(recorder.wait_ready(), worker.wait_ready())

    await wait_for(lambda: _all_done(pg, len(specs)), 150, 0.2, "every job final after restart")
    rows = await pg.fetch("SELECT id, status, attempts FROM jobs")
    assert {r["status"] for r in rows} == {"completed"}
    assert any(r["attempts"] > 1 for r in rows), "a job killed mid-run was run again"
    # Every attempt logged each of its steps exactly once (the PK refuses duplicates, so a
    # duplicate would show as a missing line of a later attempt instead of an extra one).
    per_attempt = await pg.fetch(
        "SELECT j.id, j.attempts, count(l.seq) AS lines, count(DISTINCT l.seq) AS distinct_lines"
        " FROM jobs j LEFT JOIN job_logs l ON l.job_id = j.id AND l.attempt = j.attempts"
        " GROUP BY j.id, j.attempts"
    )
    assert all(r["lines"] == r["distinct_lines"] == 3 for r in per_attempt)
    await wait_for(lambda: _group_drained(redis), 30, what="recorder group drained")


async def _group_drained(redis: Redis) -> bool:
    group = next(g for g in await redis.xinfo_groups(EVENTS) if g["name"] == b"recorder")
    return bool(group["pending"] == 0 and group["lag"] == 0)
