"""Scheduler replicas as processes: every-second schedules fired exactly once by a fleet of
two (one SIGKILLed and restarted mid-run), missed slots recorded per policy after
downtime, and changes picked up through LISTEN/NOTIFY.

The fleet test runs ``JOBDECK_TEST_SCHEDULER_SOAK_S`` seconds (30 by default; set it
higher to soak for minutes).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from jobdeck.cron import parse
from jobdeck.queues import queue_key
from jobdeck.settings import Settings
from redis.asyncio import Redis

from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

SOAK_S = float(os.environ.get("JOBDECK_TEST_SCHEDULER_SOAK_S", "30"))
EVERY_SECOND = "* * * * * *"


def scheduler(settings: Settings, tmp_path: Path, name: str, **env: str) -> ServiceProcess:
    port = free_port()
    extra = {"JOBDECK_SCHEDULER_PORT": str(port), "JOBDECK_INSTANCE": name, **env}
    return ServiceProcess("jobdeck_scheduler", settings_env(settings, **extra), port, tmp_path)


async def add_schedule(pg: asyncpg.Pool, queue: str, cron: str, **cols: object) -> str:
    tid = await pg.fetchval(
        "INSERT INTO job_templates (name, queue, task) VALUES ($1, $2, 'noop') RETURNING id",
        f"t-{uuid.uuid4().hex[:8]}",
        queue,
    )
    first = parse(cron, "UTC").next_after(datetime.now(UTC) + timedelta(seconds=1))
    names = ["template_id", "name", "cron_expression", "next_run_at", *cols]
    values = [tid, f"s-{tid}", cron, first, *cols.values()]
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    sid: str = await pg.fetchval(
        f"INSERT INTO job_schedules ({', '.join(names)}) VALUES ({marks}) RETURNING id", *values
    )
    return sid


async def slots_of(pg: asyncpg.Pool, sid: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pg.fetch(
        "SELECT * FROM job_schedule_runs WHERE schedule_id = $1 ORDER BY scheduled_at", sid
    )
    return rows


def assert_every_slot_once(rows: list[asyncpg.Record]) -> None:
    """Consecutive seconds from the first slot to the last, each accounted for once."""
    expected = rows[0]["scheduled_at"]
    for r in rows:
        assert r["scheduled_at"] == expected, f"gap or duplicate at {expected}: {r}"
        expected = (r["last_slot_at"] or r["scheduled_at"]) + timedelta(seconds=1)
        if r["last_slot_at"] is not None:
            span = (r["last_slot_at"] - r["scheduled_at"]).total_seconds()
            assert r["slot_count"] == span + 1


async def test_two_replicas_fire_every_second_exactly_once_through_a_sigkill(
    settings: Settings, pg: asyncpg.Pool, redis: Redis, tmp_path: Path, service_procs: list
) -> None:
    ids = [await add_schedule(pg, "fleet", EVERY_SECOND, overlap_policy="allow") for _ in range(3)]
    a = scheduler(settings, tmp_path, "sched-a").start()
    b = scheduler(settings, tmp_path, "sched-b").start()
    service_procs.extend([a, b])
    await asyncio.gather(a.wait_ready(), b.wait_ready())

    async def fired_by(name: str) -> bool:
        n = await pg.fetchval("SELECT count(*) FROM job_schedule_runs WHERE recorded_by = $1", name)
        return bool(n)

    await wait_for(lambda: fired_by("sched-a"), timeout=20, what="replica a to fire")
    await asyncio.sleep(SOAK_S / 2)  # let the fleet run
    a.kill()  # SIGKILL, possibly mid-tick
    killed_at = datetime.now(UTC)
    await asyncio.sleep(2)  # the survivor runs alone for a while
    a2 = scheduler(settings, tmp_path, "sched-a2").start()
    service_procs.append(a2)
    await a2.wait_ready()
    await asyncio.sleep(SOAK_S / 2)
    stop_at = datetime.now(UTC)
    for proc in (a2, b):
        assert proc.stop() == 0, proc.log_tail()

    total = 0
    for sid in ids:
        rows = await slots_of(pg, sid)
        assert_every_slot_once(rows)
        assert all(r["outcome"] == "enqueued" for r in rows), [
            (r["scheduled_at"], r["outcome"], r["reason"])
            for r in rows
            if r["outcome"] != "enqueued"
        ]
        assert rows[0]["scheduled_at"] < killed_at < rows[-1]["scheduled_at"]
        assert rows[-1]["scheduled_at"] > stop_at - timedelta(seconds=3)
        total += len(rows)
    # One job per slot in Redis: the deterministic ids never doubled a slot.
    assert await redis.zcard(queue_key("fleet")) == total
    by = {r["recorded_by"] for r in await pg.fetch("SELECT recorded_by FROM job_schedule_runs")}
    assert {"sched-a", "sched-b", "sched-a2"} <= by


async def test_downtime_slots_are_recorded_per_catch_up_policy(
    settings: Settings, pg: asyncpg.Pool, redis: Redis, tmp_path: Path, service_procs: list
) -> None:
    sid = await add_schedule(pg, "downtime", EVERY_SECOND, overlap_policy="allow")
    env = {"JOBDECK_SCHEDULER_GRACE_MS": "2000"}
    first = scheduler(settings, tmp_path, "sched-1", **env).start()
    service_procs.append(first)
    await first.wait_ready()

    async def runs_by(name: str, n: int) -> bool:
        count = await pg.fetchval(
            "SELECT count(*) FROM job_schedule_runs WHERE recorded_by = $1", name
        )
        return bool(count >= n)

    await wait_for(lambda: runs_by("sched-1", 2), timeout=20, what="first runs")
    first.kill()
    killed_at = datetime.now(UTC)
    await asyncio.sleep(5)  # the scheduler is down: these slots go past the grace
    restarted_at = datetime.now(UTC)
    second = scheduler(settings, tmp_path, "sched-2", **env).start()
    service_procs.append(second)
    await second.wait_ready()
    await wait_for(lambda: runs_by("sched-2", 4), timeout=20, what="runs after restart")
    assert second.stop() == 0

    rows = await slots_of(pg, sid)
    assert_every_slot_once(rows)
    # Policy once: the slots of the downtime are missed, folded into one run: the on-time
    # slot at restart if one is within the grace, else a catch-up run of the newest.
    missed = [r for r in rows if r["outcome"] == "missed"]
    down = [
        r
        for r in missed
        if r["scheduled_at"] <= restarted_at
        and (r["last_slot_at"] or r["scheduled_at"]) > killed_at
    ]
    assert down, [(r["scheduled_at"], r["outcome"], r["reason"]) for r in rows]
    last = down[-1]
    following = (last["last_slot_at"] or last["scheduled_at"]) + timedelta(seconds=1)
    (after,) = [r for r in rows if r["scheduled_at"] == following]
    assert after["outcome"] == "enqueued" and after["recorded_by"] == "sched-2"
    if after["trigger"] == "catch_up":
        assert "coalesced into the catch-up run" in last["reason"]
    else:
        assert "covered by the on-time run" in last["reason"]
    s = await pg.fetchrow("SELECT * FROM job_schedules WHERE id = $1", sid)
    assert s["runs_missed"] == sum(r["slot_count"] for r in missed)
    assert s["runs_fired"] == sum(1 for r in rows if r["outcome"] == "enqueued")


async def test_a_new_schedule_is_picked_up_without_polling(
    settings: Settings, pg: asyncpg.Pool, tmp_path: Path, service_procs: list
) -> None:
    # Polls only once a minute: only the NOTIFY from the table's trigger can wake it.
    proc = scheduler(settings, tmp_path, "sched-l", JOBDECK_SCHEDULER_MAX_IDLE_MS="60000")
    service_procs.append(proc.start())
    await proc.wait_ready()
    async with aiohttp.ClientSession() as http, http.get(proc.url + "/metrics") as resp:
        assert "jobdeck_scheduler_fire_lag_seconds" in await resp.text()
    sid = await add_schedule(pg, "listen", EVERY_SECOND)

    async def fired() -> bool:
        return bool(await slots_of(pg, sid))

    await wait_for(fired, timeout=10, what="the new schedule to fire")
    async with aiohttp.ClientSession() as http, http.get(proc.url + "/metrics") as resp:
        text = await resp.text()
    assert 'jobdeck_scheduler_fire_lag_seconds_count{trigger="cron"}' in text
