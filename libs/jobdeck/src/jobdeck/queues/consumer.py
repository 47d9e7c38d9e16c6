"""``QueueConsumer``: the worker side of one queue — claim, wait, renew, restore, finish.

A run owns its job through a lease: a token (``<run number>@<worker>``) in the job's hash
and a deadline in the queue's active set. Renewals and the finish only act while the token
matches, so a worker whose lease expired (and whose job another worker now runs) can
neither extend it nor finish it: its late final events are never written. A finish is thus
also idempotent: replayed after a lost reply, it finds the token gone and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from jobdeck.events import now_ms
from jobdeck.queues import scripts
from jobdeck.queues.layout import (
    JOB_PREFIX,
    KEEP_MS,
    PAUSED,
    PRIORITY_WEIGHT_MS,
    WAKE_BOUND,
    active_key,
    delayed_key,
    job_key,
    queue_key,
    wake_key,
)
from jobdeck.streams import EVENTS

# Expired leases and due delayed jobs handled per claim (the rest at the next claims).
CHORE_BUDGET = 100


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One run of a job this worker now owns."""

    job_id: str
    spec: bytes  # msgpack of ``JobSpec.envelope()``
    runs: int  # runs started since it was enqueued, this one included
    handed_back: int  # earlier runs handed back by stopping workers (not charged)
    token: str


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    jobs: list[Claimed]
    next_due_ms: int | None  # when the earliest delayed job of the queue is due


class Outcome(StrEnum):
    DONE = "done"  # completed, failed for good, or cancelled
    RETRY = "retry"  # runs again at ``due_ms`` (ready at once if already due)
    HANDBACK = "handback"  # the worker stopped: back to its place, the run not charged


@dataclass(frozen=True, slots=True)
class Finish:
    job_id: str
    token: str
    outcome: Outcome
    events: Sequence[bytes] = ()  # encoded events, the final one last
    due_ms: int = 0


@dataclass(frozen=True, slots=True)
class Renewal:
    lost: list[str] = field(default_factory=list)  # another run owns it, or it is finished
    missing: list[str] = field(default_factory=list)  # Redis lost it: ``restore`` it
    # a cancel was requested: job id -> who asked (None: nobody named)
    abort: dict[str, str | None] = field(default_factory=dict)


class QueueConsumer:
    """One worker's handle on one queue; every call is a single script or command."""

    def __init__(
        self,
        redis: Redis,
        queue: str,
        worker: str,
        stream_maxlen: int,
        *,
        keep_ms: int = KEEP_MS,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.worker = worker
        self.stream_maxlen = stream_maxlen
        self.keep_ms = keep_ms
        self.clock = clock
        self._ready = queue_key(queue)
        self._delayed = delayed_key(queue)
        self._active = active_key(queue)
        self._wake = wake_key(queue)
        self._claim = scripts.register(redis, "claim")
        self._finish = scripts.register(redis, "finish")
        self._renew = scripts.register(redis, "renew")
        self._restore = scripts.register(redis, "restore")

    async def claim(self, n: int, lease_ms: int) -> ClaimBatch:
        """Take up to ``n`` ready jobs, best first; none while the queue is paused.

        The same call requeues runs whose lease expired (a ``retrying`` event, or ``failed``
        past the budget, with ``error_type`` ``LeaseExpired``) and promotes due delayed
        jobs, so that no separate process is needed for either.
        """
        reply = await self._claim(
            keys=[self._ready, self._delayed, self._active, PAUSED, EVENTS],
            args=[
                self.clock(),
                n,
                lease_ms,
                self.worker,
                self.queue,
                JOB_PREFIX,
                PRIORITY_WEIGHT_MS,
                CHORE_BUDGET,
                self.stream_maxlen,
                self.keep_ms,
            ],
        )
        next_due = int(reply[0])
        jobs = [
            Claimed(
                _text(reply[i]),
                reply[i + 1],
                int(reply[i + 2]),
                int(reply[i + 3]),
                _text(reply[i + 4]),
            )
            for i in range(1, len(reply), 5)
        ]
        return ClaimBatch(jobs, None if next_due < 0 else next_due)

    async def wait_for_work(self, timeout_s: float) -> bool:
        """Block until an enqueue or a retry hands this worker a wake token (one worker per
        token, not all of them), or ``timeout_s`` passes; True if woken."""
        # redis-py types the timeout as int; Redis 6+ takes fractions of a second
        timeout: Any = max(timeout_s, 0.001)
        reply = await self.redis.blpop([self._wake], timeout=timeout)  # type: ignore[misc]
        return reply is not None

    async def finish(self, runs: Sequence[Finish]) -> list[bool]:
        """Finish many runs in one script call; per run, False if it no longer owned its job."""
        if not runs:
            return []
        args: list[Any] = [
            self.clock(),
            self.stream_maxlen,
            JOB_PREFIX,
            self.keep_ms,
            PRIORITY_WEIGHT_MS,
            WAKE_BOUND,
        ]
        for run in runs:
            args += [run.job_id, run.token, run.outcome.value, run.due_ms, len(run.events)]
            args += run.events
        reply = await self._finish(
            keys=[self._ready, self._delayed, self._active, EVENTS, self._wake], args=args
        )
        return [r == 1 for r in reply]

    async def renew(self, runs: Sequence[tuple[str, str]], lease_ms: int) -> Renewal:
        """Extend the leases of ``(job_id, token)`` runs; report the ones not to go on with."""
        if not runs:
            return Renewal()
        args: list[Any] = [self.clock() + lease_ms, JOB_PREFIX]
        for job_id, token in runs:
            args += [job_id, token]
        lost, missing, abort = await self._renew(keys=[self._active], args=args)
        asked = {_text(abort[i]): _text(abort[i + 1]) or None for i in range(0, len(abort), 2)}
        return Renewal([_text(i) for i in lost], [_text(i) for i in missing], asked)

    async def restore(self, job: Claimed, envelope: dict[str, Any], lease_ms: int) -> bool:
        """Write back a running job that Redis lost (restarted empty); False if it exists."""
        now = self.clock()
        priority = int(envelope.get("priority") or 0)
        fields: list[Any] = [
            "q", self.queue,
            "name", str(envelope.get("name") or ""),
            "spec", job.spec,
            "prio", priority,
            "max", int(envelope.get("max_attempts") or 1),
            "off", int(envelope.get("attempt_offset") or 0),
            "runs", job.runs,
            "hb", job.handed_back,
            "state", "active",
            "score", now - priority * PRIORITY_WEIGHT_MS,
            "token", job.token,
            "worker", self.worker,
            "started", now,
        ]  # fmt: skip
        reply = await self._restore(
            keys=[job_key(job.job_id), self._active],
            args=[job.job_id, now + lease_ms, *fields],
        )
        return bool(reply == 1)
