"""Retention on real Postgres: per-queue days, logs apart, small batches, one pruner at a time,
monthly log partitions created ahead and dropped whole."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.pruner import PRUNER_LOCK_ID, Pruner
from jobdeck_recorder.store import QUERIES
from prometheus_client import REGISTRY

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
CONFIG = RecorderConfig(retention_pause_ms=0, retention_duty_pct=100)


async def job(pg: asyncpg.Pool, job_id: str, queue: str, status: str, age_days: float) -> None:
    """A job that finished ``age_days`` ago (unfinished ones never did), with two log lines."""
    finished = NOW - timedelta(days=age_days) if status != "active" else None
    await pg.execute(
        "INSERT INTO jobs (id, queue, name, status, created_at, finished_at)"
        " VALUES ($1, $2, 't', $3, $4, $5)",
        job_id,
        queue,
        status,
        NOW - timedelta(days=age_days + 1),
        finished,
    )
    await pg.execute(
        "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
        " SELECT $1, 1, n, $2, 'info', 'line' FROM generate_series(1, 2) n",
        job_id,
        NOW - timedelta(days=age_days),
    )


async def left(pg: asyncpg.Pool) -> tuple[set[str], set[str]]:
    jobs = {r["id"] for r in await pg.fetch("SELECT id FROM jobs")}
    logs = {r["job_id"] for r in await pg.fetch("SELECT DISTINCT job_id FROM job_logs")}
    return jobs, logs


async def test_each_queue_keeps_what_its_config_or_the_defaults_say(pg: asyncpg.Pool) -> None:
    # Queue "a" has no config: completed 30 days, failed/cancelled 90, logs 30.
    await job(pg, "a-done-40d", "a", "completed", 40)
    await job(pg, "a-done-10d", "a", "completed", 10)
    await job(pg, "a-failed-100d", "a", "failed", 100)
    await job(pg, "a-cancelled-40d", "a", "cancelled", 40)
    await job(pg, "a-active-old", "a", "active", 200)
    # Queue "b": completed 1 day, failed forever (0), logs 1 day.
    await pg.execute(
        "INSERT INTO job_queue_configs (queue, keep_completed_days, keep_failed_days,"
        " keep_logs_days) VALUES ('b', 1, 0, 1)"
    )
    await job(pg, "b-done-2d", "b", "completed", 2)
    await job(pg, "b-failed-400d", "b", "failed", 400)
    await job(pg, "b-failed-0d", "b", "failed", 0.1)
    before = REGISTRY.get_sample_value("jobdeck_pruner_rows_deleted_total", {"table": "jobs"})

    result = await Pruner(pg, CONFIG).run_once(NOW)

    assert result is not None and result.jobs == 3
    jobs, logs = await left(pg)
    assert jobs == {"a-done-10d", "a-cancelled-40d", "a-active-old", "b-failed-400d", "b-failed-0d"}
    # Logs go with their job, and on their own past the logs retention of a finished job.
    assert logs == {"a-done-10d", "a-active-old", "b-failed-0d"}
    after = REGISTRY.get_sample_value("jobdeck_pruner_rows_deleted_total", {"table": "jobs"})
    assert (after or 0) - (before or 0) == 3
    again = await Pruner(pg, CONFIG).run_once(NOW)
    assert again is not None and (again.jobs, again.logs) == (0, 0)  # nothing left to do


async def test_deletes_in_small_batches_and_a_pass_is_bounded(pg: asyncpg.Pool) -> None:
    for n in range(10):
        await job(pg, f"old-{n}", "q", "completed", 60 + n)
    small = replace(CONFIG, retention_batch=3, retention_max_batches=2)
    first = await Pruner(pg, small).run_once(NOW)
    assert first is not None and (first.jobs, first.batches) == (6, 2)
    assert len((await left(pg))[0]) == 4  # the next pass goes on where this one stopped
    second = await Pruner(pg, replace(small, retention_max_batches=100)).run_once(NOW)
    assert second is not None and second.jobs == 4
    assert await left(pg) == (set(), set())


async def test_one_pruner_at_a_time_across_replicas(pg: asyncpg.Pool) -> None:
    await job(pg, "old", "q", "completed", 60)
    async with pg.acquire() as other_replica:
        await other_replica.execute("SELECT pg_advisory_lock($1)", PRUNER_LOCK_ID)
        assert await Pruner(pg, CONFIG).run_once(NOW) is None  # the other one is pruning
        assert (await left(pg))[0] == {"old"}
        await other_replica.execute("SELECT pg_advisory_unlock($1)", PRUNER_LOCK_ID)
    result = await Pruner(pg, CONFIG).run_once(NOW)
    assert result is not None and result.jobs == 1


async def test_the_log_pass_starts_where_the_last_one_stopped(pg: asyncpg.Pool) -> None:
    await job(pg, "kept-job", "q", "failed", 40)  # job kept 90 days, its logs 30
    assert (await Pruner(pg, CONFIG).run_once(NOW)) is not None
    until = await pg.fetchval(
        "SELECT logs_pruned_until FROM job_retention_state WHERE queue = 'q' AND status = 'failed'"
    )
    assert until == NOW - timedelta(days=40)
    # A later log line of the same old job (late write): the next pass does not rescan.
    await pg.execute(
        "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
        " VALUES ('kept-job', 1, 9, now(), 'info', 'late')"
    )
    again = await Pruner(pg, CONFIG).run_once(NOW)
    assert again is not None and again.logs == 0


async def partitions(pg: asyncpg.Pool) -> dict[str, tuple[datetime | None, datetime | None]]:
    rows = await pg.fetch("SELECT * FROM jobdeck_log_partitions()")
    return {r["name"]: (r["lower_bound"], r["upper_bound"]) for r in rows}


async def line(pg: asyncpg.Pool, job_id: str, ts: datetime) -> str:
    """Insert a log line the recorder's way; the partition it landed in."""
    for _ in range(2):  # an event delivered twice is one line
        await pg.execute(
            QUERIES["insert_logs"],
            json.dumps(
                [
                    {
                        "job_id": job_id,
                        "attempt": 1,
                        "seq": 1,
                        "ts": int(ts.timestamp() * 1000),
                        "level": "info",
                        "message": "x",
                    }
                ]
            ),
        )
    rows = await pg.fetch(
        "SELECT tableoid::regclass::text AS p FROM job_logs WHERE job_id = $1", job_id
    )
    assert len(rows) == 1
    return str(rows[0]["p"])


async def test_log_partitions_are_kept_created_months_ahead(pg: asyncpg.Pool) -> None:
    await pg.execute("DROP TABLE job_logs_default")  # what no month covers would fail here
    for name, (lower, _) in (await partitions(pg)).items():
        if lower is not None and lower > datetime.now(UTC) + timedelta(days=31):
            await pg.execute(f"DROP TABLE {name}")  # as if the last pass ran months ago
    assert await Pruner(pg, CONFIG).run_once(NOW) is not None
    bounds = await partitions(pg)
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    four_months_on = (month + timedelta(days=31 * 4)).replace(day=1)
    assert max(upper for _, upper in bounds.values() if upper) == four_months_on
    for ahead in (63, 75, 88):  # past the legacy partition, within the next 3 months
        ts = datetime.now(UTC) + timedelta(days=ahead)
        assert (await line(pg, f"ahead-{ahead}", ts)).startswith("job_logs_2")


async def test_a_month_past_every_queues_log_retention_is_dropped_whole(
    pg: asyncpg.Pool,
) -> None:
    real_now = datetime.now(UTC)
    assert await line(pg, "old", real_now - timedelta(days=400)) == "job_logs_legacy"
    later = await line(pg, "later", real_now + timedelta(days=70))
    await pg.execute(
        "INSERT INTO job_queue_configs (queue, keep_logs_days) VALUES ('long', 60), ('short', 1)"
    )
    before = REGISTRY.get_sample_value("jobdeck_pruner_partitions_dropped_total") or 0
    # 130 days from now, with 60 days the longest log retention: every month that ended
    # before 70 days from now goes, later ones stay. The legacy partition ends two months
    # after the month the migrations ran in (0013), at most 62 days from now: it goes.
    result = await Pruner(pg, CONFIG).run_once(real_now + timedelta(days=130))
    assert result is not None
    names = set(await partitions(pg))
    assert "job_logs_legacy" not in names and later in names
    assert all(
        upper is None or upper > real_now + timedelta(days=70)
        for _, upper in (await partitions(pg)).values()
    )
    assert (await left(pg))[1] == {"later"}
    after = REGISTRY.get_sample_value("jobdeck_pruner_partitions_dropped_total") or 0
    assert after - before >= 1


async def test_no_month_is_dropped_while_a_queue_keeps_its_logs_forever(
    pg: asyncpg.Pool,
) -> None:
    real_now = datetime.now(UTC)
    await line(pg, "old", real_now - timedelta(days=400))
    await pg.execute("INSERT INTO job_queue_configs (queue, keep_logs_days) VALUES ('audit', 0)")
    assert await Pruner(pg, CONFIG).run_once(real_now + timedelta(days=1000)) is not None
    assert "job_logs_legacy" in await partitions(pg)
    assert (await left(pg))[1] == {"old"}
