"""One run of one claimed job, from its envelope to its final event (no queue work here).

``Execution.run`` reads the envelope, refuses what cannot run (malformed, unknown task),
publishes ``started``, runs the task under its timeout and turns the way it ended into a
``Final``: the final event and what the queue does next (done, retry at a time, hand back).
Attempt numbers and the budget come from jobdeck's own counters in the claim
(``Claimed.runs``, ``Claimed.handed_back``), never from a key that can expire.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from jobdeck.events import Event
from jobdeck.queues import Claimed, Outcome

from jobdeck_worker import lifecycle
from jobdeck_worker.buffer import EventBuffer
from jobdeck_worker.context import JobContext
from jobdeck_worker.envelope import Envelope
from jobdeck_worker.errors import JobTimeout, MalformedJob, NonRetryableError, UnknownTask
from jobdeck_worker.lifecycle import JobRun
from jobdeck_worker.metrics import QueueMetrics
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.policy import (
    attempt_number,
    charged_attempt,
    decide_retry,
    effective_timeout_s,
)
from jobdeck_worker.registry import TaskRegistry


class StopReason:
    """Why the runtime cancelled a run (set on the run before cancelling its task)."""

    ABORT = "abort"  # a user cancelled the job
    LOST = "lost"  # the lease went to another run: stop, write nothing
    SHUTDOWN = "shutdown"  # the worker is stopping: hand the job back


@dataclass(slots=True)
class Final:
    event: Event | None  # None: the run lost its job, nothing is written
    outcome: Outcome
    due_ms: int = 0


@dataclass(slots=True)
class Run:
    """A claimed job while this worker runs it (what the housekeeping thread renews)."""

    claimed: Claimed
    started_at: int
    # monotonic time after which its lease is no longer renewed: the job's timeout plus one
    # lease, so a task that blocks the loop for good cannot keep its job forever
    deadline_s: float
    envelope: dict[str, Any] | None = None
    begun: bool = False  # its task is running (a task cancelled before it starts never runs)
    ended: bool = False  # the task returned: only its finish is left, nothing to stop
    stop: str | None = None
    stopped_by: str | None = None


def _synthetic(exc: Exception) -> dict[str, Any]:
    """Error fields for a failure the runtime decided, where a traceback would only confuse."""
    return {"error_type": type(exc).__name__, "error_message": str(exc), "traceback": None}


class Execution:
    def __init__(
        self,
        queue: str,
        registry: TaskRegistry,
        events: EventBuffer,
        instance: str,
        options: WorkerOptions,
        metrics: QueueMetrics,
        clock: Callable[[], int],
    ) -> None:
        self.queue = queue
        self.registry = registry
        self.events = events
        self.instance = instance
        self.options = options
        self.metrics = metrics
        self.clock = clock

    def parse(self, run: Run) -> Envelope:
        try:
            raw = msgpack.unpackb(run.claimed.spec, raw=False)
        except Exception as exc:
            raise MalformedJob(f"job envelope is not msgpack: {type(exc).__name__}") from exc
        env = Envelope.parse(raw)
        run.envelope = raw
        return env

    async def run(self, run: Run) -> Final:
        """Run the job; never raises (a cancellation is turned into its ``Final`` too)."""
        run.begun = True
        claimed = run.claimed
        try:
            env = self.parse(run)
        except MalformedJob as exc:
            job = JobRun(claimed.job_id, self.queue, None, max(claimed.runs, 1), 1, None)
            return Final(lifecycle.failed(job, _synthetic(exc), self.clock()), Outcome.DONE)
        attempt = attempt_number(env.attempt_offset, claimed.runs)
        job = JobRun(
            claimed.job_id, self.queue, env.name, attempt, env.max_attempts, run.started_at
        )
        task = self.registry.get(env.name, self.queue)
        if task is None:
            refusal = UnknownTask(f"no task named {env.name!r} on queue {self.queue!r}")
            job.started_at = None
            return Final(lifecycle.failed(job, _synthetic(refusal), self.clock()), Outcome.DONE)
        if run.stop is not None:  # stopped between its claim and its start
            return self._stopped(run, job)
        self.events.emit(claimed.job_id, lifecycle.started(job, self.instance, claimed.handed_back))
        self.metrics.started.inc()
        self.metrics.running.inc()
        timeout_s = effective_timeout_s(env.timeout_s, self.options.max_timeout_s)
        run.deadline_s = time.monotonic() + timeout_s + self.options.lease_s
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                result = await task(JobContext(job, env.data, self.events))
        except asyncio.CancelledError:
            return self._stopped(run, job)
        except Exception as exc:
            error = exc
            if deadline.expired() and isinstance(exc, TimeoutError):
                error = JobTimeout(f"job timed out after {timeout_s:g}s")
                error.__cause__, error.__traceback__ = exc, exc.__traceback__
            return self._failure(job, env, claimed.handed_back, error)
        finally:
            self.metrics.running.dec()
        return Final(lifecycle.completed(job, result, self.clock()), Outcome.DONE)

    def _stopped(self, run: Run, job: JobRun) -> Final:
        if run.stop == StopReason.ABORT:
            return Final(lifecycle.cancelled(job, run.stopped_by, self.clock()), Outcome.DONE)
        if run.stop == StopReason.LOST:
            return Final(None, Outcome.DONE)
        return Final(lifecycle.handed_back(job, self.clock()), Outcome.HANDBACK)

    def _failure(self, job: JobRun, env: Envelope, handed_back: int, exc: Exception) -> Final:
        error = lifecycle.error_fields(exc)
        decision = decide_retry(
            charged_attempt(job.attempt, handed_back),
            env.max_attempts,
            env.backoff_ms,
            permanent=isinstance(exc, NonRetryableError),
            cap_ms=self.options.backoff_cap_ms,
            jitter=self.options.backoff_jitter,
            rand=random.random(),
        )
        finished_at = self.clock()
        if decision.retry:
            due = finished_at + decision.delay_ms
            return Final(lifecycle.retrying(job, error, due, finished_at), Outcome.RETRY, due)
        return Final(lifecycle.failed(job, error, finished_at), Outcome.DONE)
