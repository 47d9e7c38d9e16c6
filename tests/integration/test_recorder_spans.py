"""The recorder keeps ``job_spans`` holding every job it writes (the cost guard's bound):
widened in the batch that needs it, written about once an hour per key, by several
recorders at once without waiting on one another for long."""

from __future__ import annotations

import asyncio
import random

import asyncpg
from jobdeck.events import Event, EventType, now_ms
from jobdeck.queues import JobSpec
from jobdeck_api.search_skew import QUEUE_LEADING_INDEXES
from jobdeck_recorder.spans import HOUR_MS
from jobdeck_recorder.store import JobStore

from tests.integration.test_recorder_consumer import job_events

HOLDS_EVERY_JOB = """
SELECT count(*) FROM jobs j
LEFT JOIN job_spans s ON s.queue = j.queue AND s.name = j.name
WHERE s.queue IS NULL OR s.first_at > j.created_at
   OR s.last_at < greatest(j.created_at, j.started_at, j.finished_at)
   OR j.duration_ms < s.min_duration OR j.duration_ms >= s.max_duration
   OR s.max_lag_ms IS NULL
   OR extract(epoch FROM greatest(j.created_at, j.started_at, j.finished_at)
                         - least(j.created_at, j.started_at, j.finished_at)) * 1000
      >= s.max_lag_ms
"""


def run(spec: JobSpec, at: int) -> list[Event]:
    return [spec.added_event(at), *job_events(spec.job_id, t0=at)]


async def span(pg: asyncpg.Pool) -> asyncpg.Record:
    return await pg.fetchrow(
        "SELECT xmin::text AS xmin, (extract(epoch FROM first_at) * 1000)::bigint AS first,"
        " (extract(epoch FROM last_at) * 1000)::bigint AS last, min_duration, max_duration,"
        " max_lag_ms"
        " FROM job_spans WHERE queue = 'q' AND name = 'task'"
    )


async def test_a_span_holds_its_jobs_and_is_written_once_an_hour(pg: asyncpg.Pool) -> None:
    store = JobStore(pg)
    hour = (now_ms() // HOUR_MS - 48) * HOUR_MS  # two days ago, on the hour
    await store.write(run(JobSpec(queue="q", name="task"), hour + 60_000))
    first = await span(pg)
    assert (first["first"], first["last"]) == (hour, hour + HOUR_MS)
    assert (first["min_duration"], first["max_duration"]) == (32, 64)  # it ran 49 ms
    assert first["max_lag_ms"] == 64  # finished 50 ms after it was created

    # Another job in the same hour: the span holds it, nothing is written.
    await store.write(run(JobSpec(queue="q", name="task"), hour + 120_000))
    assert await span(pg) == first

    # A job a day later and one a day earlier widen it, each to its whole hour.
    await store.write(run(JobSpec(queue="q", name="task"), hour + 24 * HOUR_MS + 5))
    await store.write(run(JobSpec(queue="q", name="task"), hour - 24 * HOUR_MS + 5))
    wide = await span(pg)
    assert (wide["first"], wide["last"]) == (hour - 24 * HOUR_MS, hour + 25 * HOUR_MS)
    assert await pg.fetchval(HOLDS_EVERY_JOB) == 0

    # A recorder that has not seen the span yet learns it from the table: it only widens.
    await JobStore(pg).write(run(JobSpec(queue="q", name="task"), hour + 3_600))
    assert (await span(pg))[1:] == wide[1:]

    # A job that waited a day to start: its times lie a day and 50 ms apart.
    spec = JobSpec(queue="q", name="task")
    await store.write([spec.added_event(hour), *job_events(spec.job_id, t0=hour + 24 * HOUR_MS)])
    assert (await span(pg))["max_lag_ms"] == 2**27  # the power of two above 86,400,050 ms
    assert await pg.fetchval(HOLDS_EVERY_JOB) == 0
    assert not await pg.fetchval("SELECT ended_unstarted FROM job_spans WHERE queue = 'q'")

    # A job cancelled before it started: the key holds a job without a start time for good.
    spec = JobSpec(queue="q", name="task")
    at = hour + 7_200
    cancelled = Event(
        EventType.CANCELLED,
        queue="q",
        job_id=spec.job_id,
        attempt=1,
        name="task",
        ts=at + 5,
        fields={"started_at": None, "finished_at": at + 5, "by": "op"},
    )
    await store.write([spec.added_event(at), cancelled])
    assert await pg.fetchval("SELECT ended_unstarted FROM job_spans WHERE queue = 'q'")


async def test_recorders_writing_the_same_keys_at_once_leave_every_job_in_its_span(
    pg: asyncpg.Pool,
) -> None:
    rnd = random.Random(7)
    now = now_ms()
    keys = [(f"q{i}", f"task-{j}") for i in range(4) for j in range(3)]

    def batch() -> list[Event]:
        events: list[Event] = []
        for queue, name in rnd.sample(keys, 6):  # each batch its own key order
            at = now - rnd.randrange(0, 30 * 24) * HOUR_MS - rnd.randrange(HOUR_MS)
            events += run(JobSpec(queue=queue, name=name), at)
        return events

    stores = [JobStore(pg) for _ in range(4)]

    async def recorder(store: JobStore) -> None:
        for _ in range(15):
            await store.write(batch())

    await asyncio.wait_for(asyncio.gather(*(recorder(s) for s in stores)), 60)
    assert await pg.fetchval("SELECT count(*) FROM jobs") == 4 * 15 * 6
    assert await pg.fetchval("SELECT count(*) FROM job_spans") == len(keys)
    assert await pg.fetchval(HOLDS_EVERY_JOB) == 0


async def test_the_guard_knows_every_index_that_leads_with_the_queue(pg: asyncpg.Pool) -> None:
    leading = await pg.fetch(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = 'jobs'::regclass AND a.attname = 'queue'"
    )
    assert {r["relname"] for r in leading} == QUEUE_LEADING_INDEXES
