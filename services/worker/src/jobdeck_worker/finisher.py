"""Finishes runs of one queue in batches: one script call for every run that ended meanwhile.

A run's final event goes out in the same script that releases its job (``finish.lua``), with
whatever of its started/progress/log events were still buffered ahead of it, so a killed
worker can never leave a finished job without its event. While one call is on its way the
next runs to end wait for it and go together in the following call: under load a worker
finishes tens of jobs per round trip, when idle each finish goes at once.

A call that fails on the connection is simply sent again: the script acts only for a run
that still owns its job (its token), so a finish that did land the first time is ignored
the second.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from jobdeck.events import encode
from jobdeck.queues import Finish, QueueConsumer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobdeck_worker.buffer import EventBuffer
from jobdeck_worker.execution import Final
from jobdeck_worker.metrics import QueueMetrics

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.05, 0.1, 0.5, 1.0, 2.0, 4.0)


@dataclass(slots=True)
class _Pending:
    job_id: str
    token: str
    final: Final
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Finisher:
    def __init__(self, consumer: QueueConsumer, events: EventBuffer, metrics: QueueMetrics) -> None:
        self.consumer = consumer
        self.events = events
        self.metrics = metrics
        self._pending: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None

    async def finish(self, job_id: str, token: str, final: Final) -> bool:
        """Release the job with its final event; False if this run no longer owned it."""
        item = _Pending(job_id, token, final)
        self._pending.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"finish-{self.consumer.queue}")
        return await asyncio.shield(item.done)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                applied = await self._send(batch)
            except BaseException as exc:
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for item, ok in zip(batch, applied, strict=True):
                event = item.final.event
                if ok and event is not None:
                    self.metrics.finished(event.type, event.fields.get("duration_ms"))
                item.done.set_result(ok)

    async def _send(self, batch: list[_Pending]) -> list[bool]:
        runs = []
        for item in batch:
            raws = await self.events.take(item.job_id)
            event = item.final.event
            if event is None:  # the run lost its job: none of its events are written
                raws = []
            else:
                raws.append(encode(event))
            runs.append(
                Finish(item.job_id, item.token, item.final.outcome, raws, item.final.due_ms)
            )
        retries = iter(RETRY_DELAYS_S)
        while True:
            try:
                return await self.consumer.finish(runs)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                delay = next(retries, None)
                if delay is None:
                    raise
                log.warning(
                    "could not finish jobs; sending again",
                    extra={"queue": self.consumer.queue, "jobs": len(runs), "error": repr(exc)},
                )
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Wait for the finishes already submitted."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
