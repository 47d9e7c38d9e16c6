"""A deleted job stays deleted: the recorder drops its events older than the removal (an
event delivered again after a restart), and records a new job under the same id."""

from __future__ import annotations

import asyncpg
from jobdeck.events import now_ms
from jobdeck.queues import JobSpec
from jobdeck_recorder.store import JobStore

from tests.integration.test_recorder_consumer import job_events


async def test_late_events_of_a_removed_job_are_dropped_a_new_job_is_not(
    pg: asyncpg.Pool,
) -> None:
    spec = JobSpec(queue="q", name="task")
    t0 = now_ms() - 60_000
    old_run = [spec.added_event(t0), *job_events(spec.job_id, t0=t0)]
    store = JobStore(pg)
    await store.write(old_run)
    await pg.execute("DELETE FROM jobs WHERE id = $1", spec.job_id)
    await pg.execute("DELETE FROM job_logs WHERE job_id = $1", spec.job_id)
    await pg.execute(
        "INSERT INTO job_tombstones (id, queue, removed_by) VALUES ($1, 'q', 'op')", spec.job_id
    )

    await store.write(old_run[2:])  # redelivered: progress, logs, completed of the old run
    assert await pg.fetchval("SELECT count(*) FROM jobs WHERE id = $1", spec.job_id) == 0
    assert await pg.fetchval("SELECT count(*) FROM job_logs WHERE job_id = $1", spec.job_id) == 0

    again = spec.added_event(now_ms() + 1_000)  # a new job reusing the id, after the removal
    await store.write([again])
    assert await pg.fetchval("SELECT status FROM jobs WHERE id = $1", spec.job_id) == "waiting"
