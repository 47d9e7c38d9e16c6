"""Batches the non-terminal events of running jobs (started, progress, log).

One XADD round trip per ``progress()`` would cost more than a no-op job itself, so events
are kept per job and written every few milliseconds in one pipeline. When a job finishes,
whatever is still buffered for it is taken out and written in the finish transaction, ahead
of the final event; a batch already on its way is waited for first, so a job's events reach
the stream in the order they happened.
"""

from __future__ import annotations

import asyncio
import logging

from jobdeck.events import Event, encode
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck_worker import metrics

log = logging.getLogger(__name__)


class EventBuffer:
    def __init__(
        self,
        redis: Redis,
        stream_maxlen: int,
        flush_delay_s: float = 0.002,
        high_water: int = 20_000,
        max_pending: int = 200_000,
    ) -> None:
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self.flush_delay_s = flush_delay_s
        self.high_water = high_water
        self.max_pending = max_pending
        # job id -> [(coalescable, encoded event)], in the order the job emitted them
        self._pending: dict[str, list[tuple[bool, bytes]]] = {}
        self._count = 0
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._wakeup = asyncio.Event()
        self._below_high_water = asyncio.Event()
        self._below_high_water.set()

    def __len__(self) -> int:
        return self._count

    def emit(self, job_id: str, event: Event, coalesce: bool = False) -> None:
        """Buffer an event; ``coalesce`` replaces the job's previous unsent one of its kind."""
        items = self._pending.get(job_id)
        if items is None:
            items = self._pending[job_id] = []
        if coalesce and items and items[-1][0]:
            items[-1] = (True, encode(event))
        else:
            if self._count >= self.max_pending:
                metrics.EVENTS_DROPPED.inc()
                return
            items.append((coalesce, encode(event)))
            self._count += 1
            if self._count >= self.high_water:
                self._below_high_water.clear()
        self._wakeup.set()

    async def backpressure(self) -> None:
        """Make a chatty task wait while Redis is not keeping up."""
        if not self._below_high_water.is_set():
            await self._below_high_water.wait()

    async def take(self, job_id: str) -> list[bytes]:
        """The job's unsent events, after any batch already carrying some of them is written."""
        while (inflight := self._inflight.get(job_id)) is not None:
            await asyncio.shield(inflight)
        items = self._pending.pop(job_id, None)
        if not items:
            return []
        self._forget(len(items))
        return [raw for _, raw in items]

    def _forget(self, n: int) -> None:
        self._count -= n
        if self._count < self.high_water // 2:
            self._below_high_water.set()

    async def close(self) -> None:
        """Write what is left (once ``run`` has stopped)."""
        for _ in range(3):
            if not self._pending or await self.flush():
                break

    async def run(self) -> None:
        """The background flusher: writes buffered events shortly after they arrive."""
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self.flush_delay_s)
            self._wakeup.clear()
            if not await self.flush():
                await asyncio.sleep(0.5)
                self._wakeup.set()

    async def flush(self) -> bool:
        """Write every buffered event now; False (events kept) if Redis failed."""
        if not self._pending:
            return True
        batch, self._pending = self._pending, {}
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for job_id in batch:
            self._inflight[job_id] = done
        ok = False
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for items in batch.values():
                    for _, raw in items:
                        pipe.xadd(
                            EVENTS, {EVENT_FIELD: raw}, maxlen=self.stream_maxlen, approximate=True
                        )
                await pipe.execute()
            ok = True
            self._forget(sum(len(items) for items in batch.values()))
        except BaseException as exc:  # keep the events whatever stopped the write
            for job_id, items in batch.items():
                later = self._pending.get(job_id)
                self._pending[job_id] = items + later if later else items
            if not isinstance(exc, RedisError):
                raise
            metrics.EVENT_FLUSH_ERRORS.inc()
            log.warning("could not write buffered events; will retry", extra={"error": repr(exc)})
        finally:
            for job_id in batch:
                if self._inflight.get(job_id) is done:
                    del self._inflight[job_id]
            done.set_result(None)
        return ok
