"""``QueueClient``: the producer side of the queues (API, scheduler, demos, tests).

Each operation is one Lua script (``lua/enqueue.lua``, ``lua/cancel.lua``) that also appends
its lifecycle event to the stream, so a job and its event can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from jobdeck.events import Event, EventType, encode, now_ms
from jobdeck.queues import scripts
from jobdeck.queues.layout import (
    CONCURRENCY,
    CONTROL_CHANNEL,
    KEEP_MS,
    PAUSED,
    RETRY_CLAIM_TTL_MS,
    WAKE_BOUND,
    active_key,
    delayed_key,
    job_key,
    queue_key,
    wake_key,
)
from jobdeck.queues.spec import JobSpec
from jobdeck.streams import EVENT_FIELD, EVENTS


class EnqueueOutcome(StrEnum):
    QUEUED = "queued"
    EXISTS = "exists"  # a job with this id is queued, running or kept (finished < keep_ms ago)
    CLAIMED = "claimed"  # the claim key was already taken (a retry of this attempt ran)


_ENQUEUE_OUTCOMES = {1: EnqueueOutcome.QUEUED, 0: EnqueueOutcome.EXISTS, 2: EnqueueOutcome.CLAIMED}


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # was waiting or delayed: removed, cancelled event written
    ABORTING = "aborting"  # was running: its worker cancels it and writes the event (with by)
    GONE = "gone"  # no longer queued nor running in Redis


@dataclass(frozen=True, slots=True)
class QueueCounts:
    waiting: int
    delayed: int
    active: int


async def queue_counts(redis: Redis, queues: Sequence[str]) -> dict[str, QueueCounts]:
    """Waiting (ready), delayed and running jobs of each queue, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for q in queues:
            pipe.zcard(queue_key(q))
            pipe.zcard(delayed_key(q))
            pipe.zcard(active_key(q))
        replies = await pipe.execute()
    return {
        q: QueueCounts(*(int(r) for r in replies[3 * i : 3 * i + 3])) for i, q in enumerate(queues)
    }


class QueueClient:
    """Producer side of the queues, shared by the API, the scheduler, demos and tests."""

    def __init__(self, redis: Redis, stream_maxlen: int, keep_ms: int = KEEP_MS) -> None:
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self.keep_ms = keep_ms
        self._enqueue = scripts.register(redis, "enqueue")
        self._cancel = scripts.register(redis, "cancel")

    def _enqueue_args(
        self, spec: JobSpec, now: int, by: str | None, replace: bool
    ) -> tuple[list[str], list[Any]]:
        keys = [
            job_key(spec.job_id),
            queue_key(spec.queue),
            delayed_key(spec.queue),
            EVENTS,
            wake_key(spec.queue),
        ]
        args: list[Any] = [
            spec.job_id,
            spec.queue,
            spec.name,
            spec.packed_envelope(),
            spec.priority,
            spec.max_attempts,
            spec.attempt_offset,
            spec.score(now),
            "1" if spec.delayed(now) else "0",
            encode(spec.added_event(now, by)),
            self.stream_maxlen,
            "1" if replace else "0",
            WAKE_BOUND,
        ]
        return keys, args

    async def enqueue(self, spec: JobSpec, by: str | None = None, replace: bool = False) -> bool:
        """Queue one job; False if a job with this id is queued, running or kept.

        A finished job's id stays taken for ``keep_ms`` (deterministic ids enqueue once);
        ``replace`` re-enqueues a finished job under its id (a manual retry).
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

    async def enqueue_claimed_many(
        self,
        items: Sequence[tuple[JobSpec, str]],
        by: str | None = None,
        claim_ttl_ms: int = RETRY_CLAIM_TTL_MS,
    ) -> list[EnqueueOutcome]:
        """``enqueue_claimed`` for many (spec, claim key) pairs in one pipelined round trip
        (the scheduler's burst of due slots); one outcome per pair, in order."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for spec, claim_key in items:
                keys, args = self._enqueue_args(spec, now, by, False)
                await self._enqueue(
                    keys=[*keys, claim_key], args=[*args, claim_ttl_ms], client=pipe
                )
            results = await pipe.execute()
        return [_ENQUEUE_OUTCOMES[int(r)] for r in results]

    async def enqueue_many(self, specs: Sequence[JobSpec], by: str | None = None) -> list[bool]:
        """Queue many jobs in one pipelined round trip; one bool per spec, as ``enqueue``."""
        now = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for spec in specs:
                keys, args = self._enqueue_args(spec, now, by, False)
                await self._enqueue(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [r == 1 for r in results]

    async def cancel(
        self, job_id: str, queue: str, name: str | None, attempt: int, by: str | None = None
    ) -> CancelOutcome:
        """Cancel a queued job now, or ask the worker running it to stop (``ABORTING``)."""
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
        keys = [job_key(job_id), queue_key(queue), delayed_key(queue), EVENTS]
        args: list[Any] = [
            job_id,
            encode(event),
            self.stream_maxlen,
            CONTROL_CHANNEL,
            queue,
            by or "",
            self.keep_ms,
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
            await pipe.execute()

    async def paused_queues(self) -> dict[str, dict[str, Any]]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(PAUSED)  # type: ignore[misc]
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    async def set_concurrency(self, queue: str, concurrency: int | None) -> None:
        """Set (or, with None, drop) the per-worker concurrency every worker of ``queue`` applies.

        Workers pick it up at once (a control message) and on their next heartbeat anyway.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            if concurrency is None:
                pipe.hdel(CONCURRENCY, queue)
            else:
                pipe.hset(CONCURRENCY, queue, str(concurrency))
            pipe.publish(CONTROL_CHANNEL, f"config:{queue}")
            await pipe.execute()

    async def counts(self, queues: Sequence[str]) -> dict[str, QueueCounts]:
        return await queue_counts(self.redis, queues)

    async def known(self, job_ids: Sequence[str]) -> list[bool]:
        """Whether Redis still holds each job: queued, delayed, running, or finished less than
        ``keep_ms`` ago (its final event is then in the stream). A job Redis lost (a restart
        without persistence) is not known."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(job_key(job_id))
            found = await pipe.execute()
        return [bool(n) for n in found]
