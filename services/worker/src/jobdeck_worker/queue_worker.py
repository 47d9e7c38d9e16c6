"""``QueueWorker``: claims and runs the jobs of one queue in this process, up to its slots.

The loop claims as many jobs as it has free slots in one script call; when the queue has
nothing for it, it blocks on the queue's wake list (one token per runnable job goes to one
idle worker, not to all), until the earliest delayed job is due, or the fallback poll. A
full worker waits for one of its runs to end instead. Paused, stopping or reconfigured, it
is nudged through ``wake``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial

from jobdeck.queues import Claimed, QueueConsumer, Renewal
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck_worker.buffer import EventBuffer
from jobdeck_worker.execution import Execution, Run, StopReason
from jobdeck_worker.finisher import Finisher
from jobdeck_worker.metrics import LEASES_LOST, QueueMetrics
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.registry import TaskRegistry

log = logging.getLogger(__name__)

# Back-off of the queue loop while Redis is unreachable.
REDIS_RETRY_MIN_S, REDIS_RETRY_MAX_S = 0.1, 2.0


class QueueWorker:
    def __init__(
        self,
        *,
        queue: str,
        concurrency: int,
        registry: TaskRegistry,
        redis: Redis,
        events: EventBuffer,
        instance: str,
        options: WorkerOptions,
        clock: Callable[[], int],
    ) -> None:
        self.queue = queue
        self.configured = concurrency  # from the command line; the queue config may override
        self.max_jobs = concurrency
        self.options = options
        self.clock = clock
        self.lease_ms = int(options.lease_s * 1000)
        self.consumer = QueueConsumer(
            redis,
            queue,
            instance,
            events.stream_maxlen,
            keep_ms=int(options.keep_result_s * 1000),
            clock=clock,
        )
        self.metrics = QueueMetrics(queue)
        self.execution = Execution(queue, registry, events, instance, options, self.metrics, clock)
        self.finisher = Finisher(self.consumer, events, self.metrics)
        self.runs: dict[str, Run] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.paused = False
        self.stopping = False
        self.main_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._full = False

    # -- control -----------------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self.tasks)

    @property
    def picking(self) -> bool:
        return not (self.paused or self.stopping)

    def wake(self) -> None:
        """Look at the queue now (resumed, reconfigured, a slot freed, stopping)."""
        self._wake.set()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused or self.stopping:
            return
        log.info("queue paused" if paused else "queue resumed", extra={"queue": self.queue})
        self.paused = paused
        self.metrics.paused.set(1 if paused else 0)
        self.wake()

    def set_concurrency(self, concurrency: int | None) -> None:
        """Apply the queue config's per-worker concurrency (None: back to the command line)."""
        wanted = self.configured if concurrency is None or concurrency < 1 else concurrency
        if wanted == self.max_jobs:
            return
        log.info(
            "queue concurrency changed",
            extra={"queue": self.queue, "from": self.max_jobs, "to": wanted},
        )
        self.max_jobs = wanted
        self.wake()

    def stop_picking(self) -> None:
        """First step of a graceful stop: take no new jobs; running ones carry on."""
        self.stopping = True
        self.wake()

    # -- leases (read by the housekeeping thread: copies only) -------------------------

    def lease_pairs(self, now_s: float) -> list[tuple[str, str]]:
        """``(job_id, token)`` of the runs to renew: not those past their timeout + a lease,
        so a task that blocks the loop for good loses its job after one lease."""
        return [
            (job_id, run.claimed.token)
            for job_id, run in self.runs.copy().items()
            if run.deadline_s > now_s
        ]

    def apply_renewal(self, renewal: Renewal) -> None:
        """Stop the runs whose job went to another run, and those a user cancelled."""
        for job_id in renewal.lost:
            if self._stop(job_id, StopReason.LOST):
                LEASES_LOST.labels(self.queue).inc()
                log.warning(
                    "lease lost: another worker runs this job now; stopping our run",
                    extra={"queue": self.queue, "job_id": job_id},
                )
        for job_id, by in renewal.abort.items():
            self._stop(job_id, StopReason.ABORT, by)

    async def check_aborts(self) -> None:
        """A cancel was requested on this queue: renew now, which says which runs to stop."""
        renewal = await self.consumer.renew(self.lease_pairs(time.monotonic()), self.lease_ms)
        self.apply_renewal(renewal)

    def _stop(self, job_id: str, reason: str, by: str | None = None) -> bool:
        run, task = self.runs.get(job_id), self.tasks.get(job_id)
        if run is None or task is None or run.stop is not None or run.ended:
            return False  # gone, already stopping, or finishing (a renewal raced its finish)
        run.stop, run.stopped_by = reason, by
        if run.begun:  # else it sees ``stop`` as it begins
            task.cancel()
        return True

    # -- the loop ----------------------------------------------------------------------

    async def main(self) -> None:
        """Claim while there are free slots; otherwise wait to be woken.

        Redis being unreachable (or restarting) is not fatal: the loop backs off and tries
        again; running jobs carry on meanwhile.
        """
        retry_s = REDIS_RETRY_MIN_S
        fallback = self.options.fallback_poll_s
        while not self.stopping:
            self._wake.clear()
            free = self.max_jobs - len(self.tasks)
            self._full = free <= 0
            try:
                if not self.picking or free <= 0:
                    await self._sleep(fallback)
                    continue
                batch = await self.consumer.claim(free, self.lease_ms)
                retry_s = REDIS_RETRY_MIN_S
                for job in batch.jobs:
                    self._start(job)
                if len(batch.jobs) == free:
                    continue  # every free slot taken: there may be more
                timeout = fallback
                if batch.next_due_ms is not None:
                    timeout = min(timeout, max((batch.next_due_ms - self.clock()) / 1000, 0.001))
                await self._idle(timeout)
            except (RedisError, OSError) as exc:
                log.warning(
                    "queue read failed; retrying",
                    extra={"queue": self.queue, "error": repr(exc), "retry_s": retry_s},
                )
                await self._sleep(retry_s)
                retry_s = min(retry_s * 2, REDIS_RETRY_MAX_S)

    async def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _idle(self, timeout: float) -> None:
        """Block on the wake list, unless something local (resume, stop, config) comes first."""
        if self._wake.is_set():
            return
        token = asyncio.ensure_future(self.consumer.wait_for_work(timeout))
        local = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({token, local}, return_when=asyncio.FIRST_COMPLETED)
        local.cancel()
        if token.done():
            token.result()  # a Redis error surfaces in the loop's back-off
            return
        token.cancel()
        with contextlib.suppress(asyncio.CancelledError, RedisError):
            await token

    def _start(self, claimed: Claimed) -> None:
        run = Run(
            claimed,
            started_at=self.clock(),
            deadline_s=time.monotonic() + self.options.max_timeout_s + self.options.lease_s,
        )
        job_id = claimed.job_id
        self.runs[job_id] = run
        task = asyncio.create_task(self._run(run))
        self.tasks[job_id] = task
        task.add_done_callback(partial(self._ended, job_id))

    async def _run(self, run: Run) -> None:
        final = await self.execution.run(run)
        run.ended = True
        claimed = run.claimed
        if not await self.finisher.finish(claimed.job_id, claimed.token, final):
            log.warning(
                "run ended after its job went to another run; its outcome is ignored",
                extra={"queue": self.queue, "job_id": claimed.job_id, "token": claimed.token},
            )

    def _ended(self, job_id: str, task: asyncio.Task[None]) -> None:
        self.tasks.pop(job_id, None)
        self.runs.pop(job_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("a run failed to finish", exc_info=exc, extra={"job_id": job_id})
        if self._full:
            self._wake.set()

    async def close(self) -> None:
        """Hand back what still runs (its slot's job goes back to its place) and stop."""
        self.stop_picking()
        for job_id in list(self.tasks):
            self._stop(job_id, StopReason.SHUTDOWN)
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.finisher.close()
        if self.main_task is not None:
            if not self.main_task.done():
                self.main_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.main_task
