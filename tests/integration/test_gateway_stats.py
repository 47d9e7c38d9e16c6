"""The gateway's stats snapshot against real Postgres and Redis: where each number comes from.

Waiting/delayed are live (the queue's sorted set), active comes from the worker registry
(the recorded rows only where no live worker reports the queue), completed/failed count the
recent window only (an old finished job is not counted, its queue is still known), summed
from the recorder's rollups, which ``_row`` writes as the recorder does for a finished job.
"""

from __future__ import annotations

import json
import time

import asyncpg
from jobdeck.queues import WORKERS, WORKERS_INFO, JobSpec, QueueClient
from jobdeck_gateway.stats import measure, queue_stats_payload, system_stats_payload, throughput
from redis.asyncio import Redis

from tests.support.gateway import validate

INSERT = """
INSERT INTO jobs (id, queue, name, status, created_at, finished_at)
VALUES ($1, $2, 't', $3, now() - interval '3 days', now() - make_interval(secs => $4::float8))
"""


ROLLUP = """
INSERT INTO job_rollups AS r (level, bucket, queue, name, status, jobs)
SELECT level, date_trunc(level, now() - make_interval(secs => $3::float8), 'UTC'), $1, 't', $2, 1
FROM unnest(ARRAY['minute', 'hour', 'day']) AS level
ON CONFLICT (level, bucket, queue, name, status) DO UPDATE SET jobs = r.jobs + 1
"""


async def _row(pg: asyncpg.Pool, job_id: str, queue: str, status: str, age_s: float) -> None:
    await pg.execute(INSERT, job_id, queue, status, age_s)
    await pg.execute(ROLLUP, queue, status, age_s)


async def test_snapshot_counts_live_jobs_and_the_recent_window(
    pg: asyncpg.Pool, redis: Redis
) -> None:
    await _row(pg, "c1", "q", "completed", 600)
    await _row(pg, "c2", "q", "completed", 1200)
    await _row(pg, "c-old", "q", "completed", 7200)  # outside the hour
    await _row(pg, "f1", "q", "failed", 30)  # inside the throughput minute too
    await _row(pg, "f-old", "q", "failed", 86_400)
    await _row(pg, "x1", "q", "cancelled", 300)
    await _row(pg, "old-only", "archive", "completed", 30 * 86_400)
    await pg.execute(  # q's failure alert looks back 5 minutes: f1 only
        "INSERT INTO job_queue_configs (queue, alert_failure_rate, alert_failure_window_s)"
        " VALUES ('q', 0.5, 300)"
    )
    await pg.execute(
        "INSERT INTO jobs (id, queue, name, status, created_at)"
        " SELECT 'a' || n, $1, 't', 'active', now() FROM generate_series(1, $2) n",
        "unreported",
        2,
    )
    await pg.execute(  # recorded as active, but the live worker says 1 runs
        "INSERT INTO jobs (id, queue, name, status, created_at)"
        " VALUES ('qa', 'q', 't', 'active', now()), ('qb', 'q', 't', 'active', now())"
    )
    queues = QueueClient(redis, 10_000)
    for _ in range(2):  # waiting; a running job is no longer in the ready set
        await queues.enqueue(JobSpec(queue="q", name="t"))
    await queues.enqueue(JobSpec(queue="q", name="t", run_at_ms=int(time.time() * 1000) + 60_000))
    info = {"queues": ["q"], "concurrency": 4, "active": 1, "per_queue": {"q": {"active": 1}}}
    await redis.zadd(WORKERS, {"w1": int(time.time() * 1000) + 60_000})
    await redis.hset(WORKERS_INFO, "w1", json.dumps(info))  # type: ignore[misc]

    snap = await measure(redis, pg)

    assert set(snap.queues) == {"q", "archive", "unreported"}
    q = snap.queues["q"]
    assert (q.waiting, q.active, q.delayed) == (2, 1, 1)
    assert (q.completed, q.failed, q.cancelled) == (2, 1, 1)
    # f1 finished 30 s ago: all of it if this minute holds it, else the last minute's share
    assert 0.5 < q.throughput <= 1.0 and q.workers == 1
    assert [(r["queue"], r["finished"], r["failed"]) for r in snap.alert_rows] == [("q", 1, 1)]
    archive = snap.queues["archive"]
    assert (archive.completed, archive.failed, archive.waiting) == (0, 0, 0)
    assert snap.queues["unreported"].active == 2  # no live worker reports it: the rows say 2
    payload = queue_stats_payload("q", q, snap.ts, snap.window_s)
    validate("queueStats", payload)
    assert payload["windowS"] == 3600
    system = system_stats_payload(snap, None)
    validate("systemStats", system)
    assert system["totals"] == {
        "waiting": 2,
        "active": 3,
        "delayed": 1,
        "completed": 2,
        "failed": 1,
    }


async def test_a_shorter_window_counts_fewer_and_survives_the_snapshot_round_trip(
    pg: asyncpg.Pool, redis: Redis
) -> None:
    from jobdeck_gateway.stats import Snapshot

    await _row(pg, "c1", "q", "completed", 60)
    await _row(pg, "c2", "q", "completed", 900)
    snap = await measure(redis, pg, window_s=300)
    assert snap.queues["q"].completed == 1 and snap.window_s == 300
    again = Snapshot.from_json(snap.to_json())
    assert again.window_s == 300 and again.queues["q"].completed == 1


async def test_a_window_of_days_sums_hour_rollups_between_its_partial_hours(
    pg: asyncpg.Pool, redis: Redis
) -> None:
    for job_id, status, age_s in (
        ("c1", "completed", 60),
        ("c2", "completed", 1800),
        ("c-old", "completed", 7200),
        ("f-old", "failed", 86_400),
        ("x-old", "cancelled", 3 * 86_400),  # outside two days
    ):
        await _row(pg, job_id, "q", status, age_s)
    snap = await measure(redis, pg, window_s=2 * 86_400)
    q = snap.queues["q"]
    assert (q.completed, q.failed, q.cancelled) == (3, 1, 0)


def test_throughput_takes_the_share_of_the_last_minute_still_inside_the_60_s() -> None:
    assert throughput(3, 60, 15.0) == 48.0
    assert throughput(3, 60, 60.0) == 3.0
