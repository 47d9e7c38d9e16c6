"""Lease renewal, the registry heartbeat, queue settings and a loop-lag watchdog, in a thread.

Task code the operator did not write blocks the event loop now and then (a ``time.sleep``,
a CPU-bound parse, a synchronous HTTP call). If leases were renewed on that loop, a block
longer than a lease would hand the job to another worker while it still runs here: the body
would run twice. So renewal runs in a thread of its own, with its own event loop and Redis
connection: a blocked loop keeps its leases, and the job runs once. A run's lease is renewed
only until its timeout plus one lease has passed, so a task that blocks for good loses its
job after that (a new attempt elsewhere, visible in its history as ``LeaseExpired``).

The same thread watches the main loop: a timer on the loop stamps the time every
``TICK_S``; when the stamp is older than ``loop_lag_warn_s`` the thread logs a warning
naming the running jobs, counts a stall and sets the lag gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from jobdeck.queues import CONCURRENCY, PAUSED, QueueConsumer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck_worker.metrics import LOOP_LAG, LOOP_STALLS
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.presence import Presence
from jobdeck_worker.queue_worker import QueueWorker

log = logging.getLogger(__name__)

TICK_S = 0.1  # the main loop stamps the time this often
WATCH_S = 0.25  # the thread looks at the stamp this often


def apply_queue_settings(
    workers: Mapping[str, QueueWorker], paused: list[Any], concurrency: list[Any]
) -> None:
    """Paused flags and per-worker concurrency read from Redis, in ``workers`` order."""
    for worker, flag, wanted in zip(workers.values(), paused, concurrency, strict=True):
        worker.set_paused(flag is not None)
        worker.set_concurrency(int(wanted) if wanted is not None else None)


class Housekeeper:
    def __init__(
        self,
        redis_url: str,
        instance: str,
        workers: Mapping[str, QueueWorker],
        options: WorkerOptions,
        stream_maxlen: int,
        clock: Callable[[], int],
    ) -> None:
        self.redis_url = redis_url
        self.instance = instance
        self.workers = workers
        self.options = options
        self.stream_maxlen = stream_maxlen
        self.clock = clock
        self.period_s = min(options.heartbeat_s, options.lease_s / 3)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future[None] | None = None
        self._last_tick = time.monotonic()
        self._tick_handle: asyncio.TimerHandle | None = None
        self._stalled_since: float | None = None

    async def start(self) -> None:
        """Start the thread; return once the first heartbeat and renewal went out."""
        self._loop = asyncio.get_running_loop()
        self._ready = self._loop.create_future()
        self._tick()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(),), name="jobdeck-housekeeping", daemon=True
        )
        self._thread.start()
        await self._ready

    async def stop(self) -> None:
        """Stop the thread; it takes this worker out of the registry on its way out."""
        self._stopping.set()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _tick(self) -> None:
        assert self._loop is not None
        self._last_tick = time.monotonic()
        self._tick_handle = self._loop.call_later(TICK_S, self._tick)

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nothing to tell
            self._loop.call_soon_threadsafe(callback, *args)

    async def _main(self) -> None:
        redis: Redis = Redis.from_url(self.redis_url)
        keep_ms = int(self.options.keep_result_s * 1000)
        consumers = {
            q: QueueConsumer(
                redis, q, self.instance, self.stream_maxlen, keep_ms=keep_ms, clock=self.clock
            )
            for q in self.workers
        }
        presence = Presence(redis, self.instance, self.workers, 3 * self.options.heartbeat_s)
        next_beat = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                self._watch(now)
                if now >= next_beat:
                    next_beat = now + self.period_s
                    try:
                        await self._beat(redis, consumers, presence)
                    except (RedisError, OSError) as exc:
                        log.warning("housekeeping failed", extra={"error": repr(exc)})
                    if self._ready is not None and not self._ready.done():
                        self._to_loop(self._ready.set_result, None)
                await asyncio.sleep(WATCH_S)
            with contextlib.suppress(RedisError, OSError):
                await presence.leave()
        finally:
            await redis.aclose()

    async def _beat(
        self, redis: Redis, consumers: Mapping[str, QueueConsumer], presence: Presence
    ) -> None:
        lease_ms = int(self.options.lease_s * 1000)
        for name, worker in self.workers.items():
            consumer = consumers[name]
            renewal = await consumer.renew(worker.lease_pairs(time.monotonic()), lease_ms)
            for job_id in renewal.missing:  # Redis restarted empty under a running job
                run = worker.runs.get(job_id)
                if run is not None and run.envelope is not None:
                    await consumer.restore(run.claimed, run.envelope, lease_ms)
            if renewal.lost or renewal.abort:
                self._to_loop(worker.apply_renewal, renewal)
        await presence.beat()
        await presence.prune()
        names = list(self.workers)
        paused = await redis.hmget(PAUSED, names)  # type: ignore[misc]
        concurrency = await redis.hmget(CONCURRENCY, names)  # type: ignore[misc]
        self._to_loop(apply_queue_settings, self.workers, paused, concurrency)

    def _watch(self, now: float) -> None:
        lag = max(now - self._last_tick - TICK_S, 0.0)
        LOOP_LAG.set(lag)
        if lag >= self.options.loop_lag_warn_s:
            if self._stalled_since is None:
                self._stalled_since = self._last_tick
                LOOP_STALLS.inc()
                running = [j for w in self.workers.values() for j in w.runs.copy()]
                log.warning(
                    "event loop blocked: a task is not yielding (its leases are still renewed)",
                    extra={"lag_s": round(lag, 3), "running": running[:20]},
                )
        elif self._stalled_since is not None:
            log.warning(
                "event loop unblocked", extra={"blocked_s": round(now - self._stalled_since, 3)}
            )
            self._stalled_since = None
