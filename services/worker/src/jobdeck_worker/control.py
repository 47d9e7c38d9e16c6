"""Pub/sub messages that steer a worker process without polling.

``jobdeck:control`` carries ``pause:<q>``, ``resume:<q>``, ``abort:<q>`` (a running job of
the queue was asked to stop) and ``config:<q>`` (its concurrency changed). The hashes stay
the source of truth: they are read after subscribing (so no message falls in between), after
every reconnect, and on every heartbeat of the housekeeping thread. Wake-ups for new jobs do
not come this way: they are tokens on each queue's wake list, one per job, for one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from jobdeck.queues import CONCURRENCY, CONTROL_CHANNEL, PAUSED
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from jobdeck_worker.housekeeping import apply_queue_settings
from jobdeck_worker.queue_worker import QueueWorker

log = logging.getLogger(__name__)
RECONNECT_DELAY_S = 1.0
ACTIONS = ("pause", "resume", "abort", "config")


def parse_control(message: str) -> tuple[str, str] | None:
    """``pause:reports`` → ("pause", "reports"); None for anything else."""
    action, sep, queue = message.partition(":")
    if not sep or not queue or action not in ACTIONS:
        return None
    return action, queue


class ControlListener:
    def __init__(self, redis: Redis, workers: Mapping[str, QueueWorker]) -> None:
        self.redis = redis
        self.workers = workers
        self._pubsub: PubSub | None = None

    async def start(self) -> None:
        """Subscribe and apply the current flags; ``listen`` then follows the changes."""
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CONTROL_CHANNEL)
        await self.sync()

    async def sync(self) -> None:
        """Read the paused flags and concurrency of every queue served here, and apply them."""
        names = list(self.workers)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(PAUSED, names)
            pipe.hmget(CONCURRENCY, names)
            paused, concurrency = await pipe.execute()
        apply_queue_settings(self.workers, paused, concurrency)

    async def handle(self, data: str) -> None:
        parsed = parse_control(data)
        if parsed is None:
            return
        action, queue = parsed
        worker = self.workers.get(queue)
        if worker is None:
            return
        if action == "abort":
            await worker.check_aborts()
        elif action == "config":
            await self.sync()
        else:
            worker.set_paused(action == "pause")

    async def listen(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    await self.handle(data.decode() if isinstance(data, bytes) else str(data))
            except RedisError as exc:
                log.warning("control channel lost; reconnecting", extra={"error": repr(exc)})
                await asyncio.sleep(RECONNECT_DELAY_S)
                with contextlib.suppress(RedisError):
                    await self._pubsub.ping()  # reconnects and re-subscribes
                    await self.sync()
                for worker in self.workers.values():
                    worker.wake()

    async def close(self) -> None:
        """Unsubscribe (once ``listen`` has stopped)."""
        if self._pubsub is not None:
            with contextlib.suppress(RedisError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
