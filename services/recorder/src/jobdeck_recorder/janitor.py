"""The janitor: jobs that vanished from Redis end ``failed`` instead of unfinished forever.

Redis runs without persistence, so a restart (or a flush, or an expired job key) loses
queued and running jobs; no worker will ever report on them and their rows would say
``waiting``/``delayed``/``active`` for good. Every ``janitor_interval_ms`` one recorder
replica (a Redis lease) reads up to ``janitor_batch`` unfinished rows that no event has
touched for ``lost_after_ms`` (oldest first, from where the last pass stopped), checks in
one pipeline whether Redis still knows each job (``QueueClient.known``: its hash in
``jobdeck:job:<id>``), and publishes a ``failed`` event with
``error_type`` ``JobLost`` for those it does not.

The recorder stays the only writer of job state: the event goes through the stream and is
recorded like any other. A job that finished in Redis wrote its final event in the same
script that finished it, so that event is ahead of ours in the stream and wins (of two
final events of one attempt the one earlier in the stream wins). A job still running on a
worker when Redis restarted gets its hash back at the worker's next lease renewal; missing
jobs are therefore checked twice, ``lost_confirm_ms`` apart, and only those missing both
times are failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from jobdeck.events import (
    Event,
    EventType,
    JobStatus,
    Phase,
    current_attempt,
    now_ms,
    version_phase,
)
from jobdeck.queues import QueueClient
from jobdeck.streams import EventStream
from redis.asyncio import Redis

from jobdeck_recorder import metrics
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.store import QUERIES

log = logging.getLogger(__name__)

LEASE_KEY = "jobdeck:recorder:janitor"
LOST = "JobLost"

# KEYS: lease key; ARGV: holder, ttl ms. Take the lease if free (SET NX PX), renew it if ours.
_HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS: lease key; ARGV: holder. Give the lease up if ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An unfinished row no event has touched for a while."""

    id: str
    queue: str
    name: str
    status: JobStatus
    attempts: int
    version: int
    updated_at: datetime
    started_at: int | None = None  # epoch ms

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Candidate:
        return cls(
            id=r["id"],
            queue=r["queue"],
            name=r["name"],
            status=JobStatus(r["status"]),
            attempts=r["attempts"],
            version=r["version"],
            updated_at=r["updated_at"],
            started_at=r["started_at"],
        )


Cursor = tuple[datetime, str]


# -- pure decisions ------------------------------------------------------------------------


def lost_attempt(attempts: int, version: int) -> int:
    """The attempt the loss ends.

    Normally the row's current attempt (``current_attempt``, as the API numbers retries).
    A row ``delayed`` after ``retrying`` holds a finished phase: attempt n failed and n+1
    was waiting its turn, so n+1 is what was lost (an event of attempt n would not be newer
    than the row, and the recorder would ignore it).
    """
    current = current_attempt(attempts, version)
    if version > 0 and version_phase(version) == Phase.FINISHED:
        return current + 1
    return current


def lost_message(status: JobStatus) -> str:
    return (
        f"the job is no longer in Redis (not queued, not running) while its row said "
        f"{status}; Redis was probably restarted or flushed, so no worker will run it"
    )


def lost_event(job: Candidate, now: int) -> Event:
    """The ``failed`` event that ends a lost job: finished now, started when it started."""
    ran = job.status is JobStatus.ACTIVE and job.started_at is not None
    started_at = job.started_at if ran else None
    return Event(
        type=EventType.FAILED,
        queue=job.queue,
        job_id=job.id,
        attempt=lost_attempt(job.attempts, job.version),
        name=job.name or None,
        ts=now,
        fields={
            "started_at": started_at,
            "finished_at": now,
            "duration_ms": None if started_at is None else max(now - started_at, 0),
            "error_type": LOST,
            "error_message": lost_message(job.status),
            "traceback": None,
        },
    )


def next_cursor(rows: Sequence[Candidate], limit: int) -> Cursor | None:
    """Where the next pass starts: after this page if it was full, else from the start."""
    if len(rows) < limit:
        return None
    return rows[-1].updated_at, rows[-1].id


def lease_ms(config: RecorderConfig) -> int:
    """Long enough to cover a pass (with its confirmation wait) and a missed beat or two."""
    return max(3 * config.janitor_interval_ms + config.lost_confirm_ms, 2_000)


# -- the loop ------------------------------------------------------------------------------


class Janitor:
    def __init__(
        self,
        redis: Redis,
        pool: asyncpg.Pool,
        config: RecorderConfig,
        instance: str,
        stream_maxlen: int,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.config = config
        self.instance = instance
        self.stream = EventStream(redis, stream_maxlen)
        self.queues = QueueClient(redis, stream_maxlen)
        self.failed = 0  # jobs this instance declared lost
        self._cursor: Cursor | None = None
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """A pass every ``janitor_interval_ms`` until stopped; failures only skip a pass."""
        interval = self.config.janitor_interval_ms / 1000
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # Redis or Postgres down: the next pass tries again
                log.warning("janitor pass failed", extra={"error": repr(exc)})
            await self._sleep(interval)
        with contextlib.suppress(Exception):
            await self._release(keys=[LEASE_KEY], args=[self.instance])

    async def hold_lease(self) -> bool:
        return bool(await self._hold(keys=[LEASE_KEY], args=[self.instance, lease_ms(self.config)]))

    async def run_once(self) -> int:
        """One bounded pass; returns how many jobs it failed as lost."""
        if not await self.hold_lease():
            return 0
        rows = await self.candidates()
        if not rows:
            return 0
        metrics.JANITOR_CHECKED.inc(len(rows))
        missing = await self.missing(rows)
        if missing and self.config.lost_confirm_ms > 0:
            # A worker still running a job re-creates its in-progress key within a lease
            # renewal; look again after that before calling anything lost.
            await self._sleep(self.config.lost_confirm_ms / 1000)
            if self._stop.is_set() or not await self.hold_lease():
                return 0
            missing = await self.missing(missing)
        if not missing:
            return 0
        now = now_ms()
        await self.stream.publish_many(lost_event(job, now) for job in missing)
        self.failed += len(missing)
        metrics.JANITOR_LOST.inc(len(missing))
        log.warning(
            "jobs no longer in redis failed as lost",
            extra={"jobs": len(missing), "job_ids": [j.id for j in missing[:20]]},
        )
        return len(missing)

    async def candidates(self) -> list[Candidate]:
        """The next page of stale unfinished rows (index range scan from the cursor)."""
        limit = self.config.janitor_batch
        if self._cursor is None:
            records = await self.pool.fetch(
                QUERIES["unfinished_stale_first"], self.config.lost_after_ms, limit
            )
        else:
            records = await self.pool.fetch(
                QUERIES["unfinished_stale_after"],
                self.config.lost_after_ms,
                limit,
                *self._cursor,
            )
        rows = [Candidate.from_record(r) for r in records]
        self._cursor = next_cursor(rows, limit)
        return rows

    async def missing(self, rows: Sequence[Candidate]) -> list[Candidate]:
        """The rows whose job Redis no longer knows, in one pipelined round trip."""
        known = await self.queues.known([job.id for job in rows])
        return [job for job, found in zip(rows, known, strict=True) if not found]

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
