"""The scheduler's loops: fire due schedules, wake on changes, fold finished jobs.

Every replica runs the same loops; they share the work through row locks
(``FOR UPDATE SKIP LOCKED``), so there is no leader to elect and no hand-over gap: when
a replica dies its open transaction rolls back and the others claim its rows on their
next tick. A replica sleeps until the next due slot, a change notification
(``LISTEN jobdeck_schedules``, sent by a trigger on ``job_schedules``) or ``max_idle_ms``,
whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck_scheduler import metrics
from jobdeck_scheduler.config import SchedulerConfig
from jobdeck_scheduler.firing import Firer
from jobdeck_scheduler.outcomes import publish_alerts, settle
from jobdeck_scheduler.queries import Q

log = logging.getLogger(__name__)

CHANNEL = "jobdeck_schedules"
TRANSIENT = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, RedisError, TimeoutError)


class Scheduler:
    def __init__(
        self,
        firer: Firer,
        pool: asyncpg.Pool,
        redis: Redis,
        config: SchedulerConfig,
        dsn: str,
        stream_maxlen: int,
    ) -> None:
        self.firer = firer
        self.pool = pool
        self.redis = redis
        self.config = config
        self.dsn = dsn
        self.stream_maxlen = stream_maxlen
        self._wake = asyncio.Event()
        self._stopping = False
        self.healthy = False
        self.last_error: str | None = None

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def run_firing(self) -> None:
        backoff = 0.1
        while not self._stopping:
            self._wake.clear()  # a change arriving during the tick wakes the next sleep
            try:
                result = await self.firer.tick()
                self.healthy, self.last_error, backoff = True, None, 0.1
            except TRANSIENT as exc:
                self._failed("tick", exc)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_ms / 1000)
                continue
            if result.claimed >= self.config.batch_size and not result.held:
                continue  # more are due now
            if result.held:
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_ms / 1000)
                continue
            await self._sleep(await self._until_next_due())

    async def _until_next_due(self) -> float:
        idle = self.config.max_idle_ms / 1000
        try:
            due = await self.pool.fetchval(Q["next_due"])
        except TRANSIENT as exc:
            self._failed("next_due", exc)
            return idle
        if due is None:
            metrics.NEXT_DUE.set(idle)
            return idle
        wait = float((due - self.firer.clock()).total_seconds())
        metrics.NEXT_DUE.set(wait)
        # Due now but nothing claimed: another replica holds those rows; look again soon.
        return min(max(wait, 0.01), idle)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _failed(self, kind: str, exc: BaseException) -> None:
        self.healthy = False
        self.last_error = f"{kind}: {exc.__class__.__name__}: {exc}"
        metrics.FAILURES.labels(kind).inc()
        log.warning("scheduler %s failed; retrying", kind, extra={"error": repr(exc)})

    async def run_listener(self) -> None:
        """Hold a LISTEN connection; reconnect when it drops (the idle poll covers the gap)."""
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                lost = asyncio.Event()
                conn = await asyncpg.connect(self.dsn)
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self.wake)
                self._wake.set()  # changes made while not listening
                await lost.wait()
            except TRANSIENT as exc:
                self._failed("listen", exc)
                await asyncio.sleep(1.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(*TRANSIENT):
                        await conn.close(timeout=2)

    async def run_outcomes(self) -> None:
        interval = self.config.settle_interval_ms / 1000
        while not self._stopping:
            try:
                while await settle(self.pool, self.config.settle_batch) >= self.config.settle_batch:
                    pass
                await publish_alerts(self.pool, self.redis, self.stream_maxlen)
            except TRANSIENT as exc:
                self._failed("settle", exc)
            await asyncio.sleep(interval)
