"""Job operations on Redis that every producer shares: enqueue, cancel, re-enqueue, pause.

Jobs live in arq's own layout (``arq:job:<id>`` holds the pickled call, the queue is a
sorted set scored by the time a job may start) so that stock arq workers and tools still
understand them. Each operation is one Lua script that also appends its lifecycle event
to the stream and wakes idle workers, so a job and its event can never disagree.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis

from jobdeck import JobdeckError
from jobdeck.events import Event, EventType, JobStatus, encode, now_ms
from jobdeck.streams import EVENT_FIELD, EVENTS

QUEUE_PREFIX = "jobdeck:queue:"
PAUSED = "jobdeck:paused"
CONTROL_CHANNEL = "jobdeck:control"
WAKE_PREFIX = "jobdeck:wake:"
# Priority of each job that waits out a due time (delayed, or a retry backing off), so that
# once due it competes with its priority: a delayed job's queue score must stay its due time
# (arq and the workers' idle wait read it), so the worker re-scores it "due - priority *
# weight" when it comes due (see ``jobdeck_worker.worker._READ``) and drops the entry.
PRIORITY_PREFIX = "jobdeck:priority:"
WORKERS = "jobdeck:workers"
WORKERS_INFO = "jobdeck:workers:info"
# Who asked to cancel a running job (one string key per job, with an expiry): the worker
# that cancels it reads the name into the ``cancelled`` event and deletes the key in the
# same transaction. A key per job rather than one hash, so that a request nobody acts on
# (the job finished first) expires on its own.
ABORT_BY_PREFIX = "jobdeck:abort:by:"
ABORT_BY_TTL_MS = 86_400_000
RUN_FUNCTION = "jobdeck.run"

MIN_PRIORITY, MAX_PRIORITY = 0, 100
# Ready jobs are scored "now - priority * weight": a higher priority sorts before every
# lower-priority job enqueued in the last ~115 days, FIFO within one priority.
PRIORITY_WEIGHT_MS = 10_000_000_000
JOB_EXPIRY_MS = 7 * 86_400_000


def queue_key(queue: str) -> str:
    return QUEUE_PREFIX + queue


def priority_key(queue: str) -> str:
    return PRIORITY_PREFIX + queue


def wake_channel(queue: str) -> str:
    return WAKE_PREFIX + queue


def abort_by_key(job_id: str) -> str:
    return ABORT_BY_PREFIX + job_id


def retry_claim_key(job_id: str, attempt_offset: int) -> str:
    return f"{RETRY_CLAIM_PREFIX}{job_id}:{attempt_offset}"


class QueueError(JobdeckError):
    """A queue operation was refused."""


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run a job, and to run it again later from its Postgres row."""

    queue: str
    name: str
    data: Any = None
    priority: int = 0
    max_attempts: int = 3
    backoff_ms: int = 1000
    timeout_s: float = 300.0
    run_at_ms: int | None = None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempt_offset: int = 0
    template_id: str | None = None
    schedule_id: str | None = None

    def envelope(self) -> dict[str, Any]:
        """The single argument the worker's ``jobdeck.run`` receives."""
        return {
            "name": self.name,
            "data": self.data,
            "max_attempts": self.max_attempts,
            "backoff_ms": self.backoff_ms,
            "timeout_s": self.timeout_s,
            "attempt_offset": self.attempt_offset,
            "priority": self.priority,
        }

    def score(self, now: int) -> int:
        if self.run_at_ms is not None and self.run_at_ms > now:
            return self.run_at_ms
        return now - self.priority * PRIORITY_WEIGHT_MS

    def deferred_priority(self, now: int) -> int:
        """The priority to apply when the job comes due: 0 if it is ready now (or has none)."""
        delayed = self.run_at_ms is not None and self.run_at_ms > now
        return self.priority if delayed and self.priority > 0 else 0

    def added_event(self, now: int, by: str | None = None) -> Event:
        delayed = self.run_at_ms is not None and self.run_at_ms > now
        return Event(
            type=EventType.ADDED,
            queue=self.queue,
            job_id=self.job_id,
            attempt=self.attempt_offset + 1,
            name=self.name,
            ts=now,
            fields={
                "status": str(JobStatus.DELAYED if delayed else JobStatus.WAITING),
                "priority": self.priority,
                "max_attempts": self.max_attempts,
                "data": self.data,
                "options": {
                    "backoff_ms": self.backoff_ms,
                    "timeout_s": self.timeout_s,
                    "template_id": self.template_id,
                    "schedule_id": self.schedule_id,
                },
                "run_at": self.run_at_ms,
                "by": by,
            },
        )


# A manual retry of attempt n claims this key (SET NX, with an expiry) in the enqueue
# script itself: two retries computed from the same row (the recorder a moment behind the
# first one's run) cannot both queue the job, so one attempt number never runs twice.
RETRY_CLAIM_PREFIX = "jobdeck:retry-claim:"
RETRY_CLAIM_TTL_MS = 86_400_000

# KEYS: job key, result key, in-progress key, queue, stream, priority hash[, claim key]
# ARGV: job bytes, expiry ms, score, job id, event bytes, stream maxlen, wake channel, replace,
#       deferred priority (0: none)[, claim expiry ms]
# Returns 1 queued, 0 the id is queued, running or kept, 2 the claim key was taken.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[3]) > 0 then return 0 end
if ARGV[8] == '0' and redis.call('EXISTS', KEYS[2]) > 0 then return 0 end
if KEYS[7] and not redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[10]) then return 2 end
redis.call('DEL', KEYS[2])
redis.call('PSETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
if ARGV[9] ~= '0' then
  redis.call('HSET', KEYS[6], ARGV[4], ARGV[9])
else
  redis.call('HDEL', KEYS[6], ARGV[4])
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'e', ARGV[5])
redis.call('PUBLISH', ARGV[7], '1')
return 1
"""

# KEYS: in-progress key, queue, job key, abort set, stream, abort-by key, priority hash
# ARGV: job id, now ms, event bytes, stream maxlen, control channel, queue name,
#       by ('' = nobody named), abort-by expiry ms
_CANCEL = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[7] ~= '' then
    redis.call('SET', KEYS[6], ARGV[7], 'PX', ARGV[8])
  end
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  redis.call('PUBLISH', ARGV[5], 'abort:' .. ARGV[6])
  return 'aborting'
end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[3])
  redis.call('HDEL', KEYS[7], ARGV[1])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
  return 'cancelled'
end
return 'gone'
"""


class EnqueueOutcome(StrEnum):
    QUEUED = "queued"
    EXISTS = "exists"  # a job with this id is queued, running or kept (its result)
    CLAIMED = "claimed"  # the claim key was already taken (a retry of this attempt ran)


_ENQUEUE_OUTCOMES = {1: EnqueueOutcome.QUEUED, 0: EnqueueOutcome.EXISTS, 2: EnqueueOutcome.CLAIMED}


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # was waiting or delayed: removed, cancelled event written
    ABORTING = "aborting"  # was running: its worker cancels it and writes the event (with by)
    GONE = "gone"  # no longer queued nor running in Redis


class QueueClient:
    """Producer side of the queues, shared by the API, the scheduler, demos and tests."""

    def __init__(self, redis: Redis, stream_maxlen: int) -> None:
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self._enqueue = redis.register_script(_ENQUEUE)
        self._cancel = redis.register_script(_CANCEL)

    def _enqueue_args(
        self, spec: JobSpec, now: int, by: str | None, replace: bool
    ) -> tuple[list[str], list[Any]]:
        score = spec.score(now)
        job = serialize_job(RUN_FUNCTION, (spec.envelope(),), {}, None, now)
        keys = [
            job_key_prefix + spec.job_id,
            result_key_prefix + spec.job_id,
            in_progress_key_prefix + spec.job_id,
            queue_key(spec.queue),
            EVENTS,
            priority_key(spec.queue),
        ]
        expiry = max(score, now) - now + JOB_EXPIRY_MS
        args = [
            job,
            expiry,
            score,
            spec.job_id,
            encode(spec.added_event(now, by)),
            self.stream_maxlen,
            wake_channel(spec.queue),
            "1" if replace else "0",
            spec.deferred_priority(now),
        ]
        return keys, args

    async def enqueue(self, spec: JobSpec, by: str | None = None, replace: bool = False) -> bool:
        """Queue one job; False if a job with this id is already queued, running or kept.

        ``replace`` re-enqueues a finished job under its id (a retry), dropping arq's result.
        """
        keys, args = self._enqueue_args(spec, now_ms(), by, replace)
        return bool(await self._enqueue(keys=keys, args=args) == 1)

    async def enqueue_claimed(
        self,
        spec: JobSpec,
        claim_key: str,
        by: str | None = None,
        replace: bool = False,
        claim_ttl_ms: int = RETRY_CLAIM_TTL_MS,
    ) -> EnqueueOutcome:
        """Queue one job only if ``claim_key`` is free, taking it in the same script.

        The claim outlives the job (``claim_ttl_ms``), so a second caller acting on the same
        stale knowledge (e.g. a retry of the same attempt) is refused even after the first
        one's job has run and its Redis keys are gone.
        """
        keys, args = self._enqueue_args(spec, now_ms(), by, replace)
        result = await self._enqueue(keys=[*keys, claim_key], args=[*args, claim_ttl_ms])
        return _ENQUEUE_OUTCOMES[int(result)]

    async def enqueue_many(self, specs: Sequence[JobSpec], by: str | None = None) -> list[bool]:
        """Queue many jobs in one pipelined round trip (arq itself needs three per job)."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for spec in specs:
                keys, args = self._enqueue_args(spec, now, by, False)
                await self._enqueue(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [bool(r) for r in results]

    async def cancel(
        self, job_id: str, queue: str, name: str | None, attempt: int, by: str | None = None
    ) -> CancelOutcome:
        now = now_ms()
        event = Event(
            type=EventType.CANCELLED,
            queue=queue,
            job_id=job_id,
            attempt=max(attempt, 1),
            name=name,
            ts=now,
            fields={"finished_at": now, "started_at": None, "by": by},
        )
        keys = [
            in_progress_key_prefix + job_id,
            queue_key(queue),
            job_key_prefix + job_id,
            abort_jobs_ss,
            EVENTS,
            abort_by_key(job_id),
            priority_key(queue),
        ]
        args: list[Any] = [
            job_id,
            now,
            encode(event),
            self.stream_maxlen,
            CONTROL_CHANNEL,
            queue,
            by or "",
            ABORT_BY_TTL_MS,
        ]
        outcome = await self._cancel(keys=keys, args=args)
        return CancelOutcome(outcome.decode() if isinstance(outcome, bytes) else outcome)

    async def pause(self, queue: str, by: str | None = None) -> None:
        await self._set_paused(queue, True, by)

    async def resume(self, queue: str, by: str | None = None) -> None:
        await self._set_paused(queue, False, by)

    async def _set_paused(self, queue: str, paused: bool, by: str | None) -> None:
        now = now_ms()
        etype = EventType.QUEUE_PAUSED if paused else EventType.QUEUE_RESUMED
        event = Event(type=etype, queue=queue, ts=now, fields={"by": by})
        async with self.redis.pipeline(transaction=True) as pipe:
            if paused:
                pipe.hset(PAUSED, queue, json.dumps({"by": by, "at": now}))
            else:
                pipe.hdel(PAUSED, queue)
            pipe.xadd(
                EVENTS, {EVENT_FIELD: encode(event)}, maxlen=self.stream_maxlen, approximate=True
            )
            pipe.publish(CONTROL_CHANNEL, f"{'pause' if paused else 'resume'}:{queue}")
            if not paused:
                pipe.publish(wake_channel(queue), "1")
            await pipe.execute()

    async def paused_queues(self) -> dict[str, dict[str, Any]]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(PAUSED)  # type: ignore[misc]
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def queue_length(self, queue: str) -> int:
        return int(await self.redis.zcard(queue_key(queue)))
