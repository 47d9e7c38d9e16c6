"""Pub/sub messages that steer a worker process without polling.

``jobdeck:wake:<queue>`` (published by every enqueue) wakes the queue's idle worker;
``jobdeck:control`` carries ``pause:<q>``, ``resume:<q>`` and ``abort:<q>``. The paused hash
``jobdeck:paused`` stays the source of truth: it is read after subscribing (so no message
falls in between), after every reconnect, and every few seconds as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from jobdeck.queues import CONTROL_CHANNEL, PAUSED, WAKE_PREFIX, wake_channel
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from jobdeck_worker.worker import JobdeckWorker

log = logging.getLogger(__name__)
RECONNECT_DELAY_S = 1.0


def parse_control(message: str) -> tuple[str, str] | None:
    """``pause:reports`` → ("pause", "reports"); None for anything else."""
    action, sep, queue = message.partition(":")
    if not sep or not queue or action not in ("pause", "resume", "abort"):
        return None
    return action, queue


class ControlListener:
    def __init__(self, redis: Redis, workers: Mapping[str, JobdeckWorker]) -> None:
        self.redis = redis
        self.workers = workers
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CONTROL_CHANNEL, *(wake_channel(q) for q in self.workers))
        await self.sync_paused()
        self._task = asyncio.create_task(self._listen(), name="jobdeck-control")

    async def sync_paused(self) -> None:
        names = list(self.workers)
        flags = await self.redis.hmget(PAUSED, names)  # type: ignore[misc]
        self.apply_paused(dict(zip(names, flags, strict=True)))

    def apply_paused(self, flags: Mapping[str, Any]) -> None:
        for name, flag in flags.items():
            self.workers[name].set_paused(flag is not None)

    def handle(self, channel: str, data: str) -> None:
        if channel.startswith(WAKE_PREFIX):
            worker = self.workers.get(channel[len(WAKE_PREFIX) :])
            if worker is not None:
                worker.wake()
            return
        parsed = parse_control(data)
        if parsed is None:
            return
        action, queue = parsed
        worker = self.workers.get(queue)
        if worker is None:
            return
        if action == "abort":
            worker.request_abort_check()
        else:
            worker.set_paused(action == "pause")

    async def _listen(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel, data = message["channel"], message["data"]
                    self.handle(
                        channel.decode() if isinstance(channel, bytes) else str(channel),
                        data.decode() if isinstance(data, bytes) else str(data),
                    )
            except RedisError as exc:
                log.warning("control channel lost; reconnecting", extra={"error": repr(exc)})
                await asyncio.sleep(RECONNECT_DELAY_S)
                with contextlib.suppress(RedisError):
                    await self._pubsub.ping()  # reconnects and re-subscribes
                    await self.sync_paused()
                for worker in self.workers.values():
                    worker.wake()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
