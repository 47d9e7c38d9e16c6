"""``QueueAdmin``: an operator's commands on queued and finished jobs (``lua/`` scripts).

- ``remove``: forget finished jobs in Redis before their history is deleted (a job queued
  or running again is kept, and said so);
- ``drain``: remove a queue's waiting (and delayed) jobs, each with its ``cancelled``
  event, in bounded script calls;
- ``promote``: a delayed job runs now, with its priority;
- ``reprioritize``: a job that has not started moves to where its new priority ranks it.

Each is atomic per job (or per drained batch); the layout they touch is ``layout``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from jobdeck.events import now_ms
from jobdeck.queues import scripts
from jobdeck.queues.layout import (
    JOB_PREFIX,
    KEEP_MS,
    PRIORITY_WEIGHT_MS,
    WAKE_BOUND,
    delayed_key,
    job_key,
    queue_key,
    wake_key,
)
from jobdeck.streams import EVENTS

DRAIN_BATCH = 500


class RemoveOutcome(StrEnum):
    REMOVED = "removed"  # finished: its Redis hash is gone now
    GONE = "gone"  # Redis no longer held it (kept time over, or lost)
    WAITING = "waiting"  # queued again (a retry): not removed
    DELAYED = "delayed"
    ACTIVE = "active"

    @property
    def finished(self) -> bool:
        return self in (RemoveOutcome.REMOVED, RemoveOutcome.GONE)


class ChangeOutcome(StrEnum):
    """What ``promote`` or ``reprioritize`` did, or the state that prevented it."""

    PROMOTED = "promoted"
    CHANGED = "changed"
    GONE = "gone"
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Pending:
    """Jobs of a queue not yet started: what a drain would remove."""

    waiting: int
    delayed: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class QueueAdmin:
    def __init__(self, redis: Redis, stream_maxlen: int, keep_ms: int = KEEP_MS) -> None:
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self.keep_ms = keep_ms
        self._remove = scripts.register(redis, "remove")
        self._drain = scripts.register(redis, "drain")
        self._promote = scripts.register(redis, "promote")
        self._priority = scripts.register(redis, "priority")

    async def remove(self, job_ids: Sequence[str]) -> list[RemoveOutcome]:
        """Forget each finished job in Redis, in one pipelined round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                await self._remove(keys=[job_key(job_id)], client=pipe)
            replies = await pipe.execute()
        return [RemoveOutcome(_text(r)) for r in replies]

    async def pending(self, queue: str) -> Pending:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(queue_key(queue))
            pipe.zcard(delayed_key(queue))
            waiting, delayed = await pipe.execute()
        return Pending(int(waiting), int(delayed))

    async def drain(
        self, queue: str, include_delayed: bool, by: str | None, limit: int | None = None
    ) -> int:
        """Remove the queue's waiting (and delayed) jobs, ``DRAIN_BATCH`` per script call
        (no call blocks Redis long), until none is left or ``limit`` are gone."""
        drained = 0
        while limit is None or drained < limit:
            n = DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - drained)
            removed = int(
                await self._drain(
                    keys=[queue_key(queue), delayed_key(queue), EVENTS],
                    args=[
                        n,
                        "1" if include_delayed else "0",
                        JOB_PREFIX,
                        queue,
                        now_ms(),
                        by or "",
                        self.stream_maxlen,
                        self.keep_ms,
                    ],
                )
            )
            drained += removed
            if removed < n:
                break
        return drained

    async def promote(self, job_id: str, queue: str) -> ChangeOutcome:
        reply = await self._promote(
            keys=[job_key(job_id), queue_key(queue), delayed_key(queue), wake_key(queue)],
            args=[job_id, now_ms(), PRIORITY_WEIGHT_MS, WAKE_BOUND],
        )
        return ChangeOutcome(_text(reply))

    async def reprioritize(self, job_id: str, queue: str, priority: int) -> ChangeOutcome:
        reply = await self._priority(
            keys=[job_key(job_id), queue_key(queue)],
            args=[job_id, priority, PRIORITY_WEIGHT_MS],
        )
        return ChangeOutcome(_text(reply))
