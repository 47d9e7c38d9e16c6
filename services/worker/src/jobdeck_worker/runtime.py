"""A worker process: one ``QueueWorker`` per queue over one Redis pool, plus what they share.

Shared: the event buffer, the control listener (pause, abort, config) and the housekeeping
thread (leases, registry heartbeat, queue settings, loop-lag watchdog). Signals are handled
once, by ``serve``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from jobdeck.events import now_ms
from jobdeck.settings import Settings
from jobdeck.supervise import Supervisor
from redis.asyncio import Redis

from jobdeck_worker.buffer import EventBuffer
from jobdeck_worker.control import ControlListener
from jobdeck_worker.housekeeping import Housekeeper
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.queue_worker import QueueWorker
from jobdeck_worker.registry import TaskRegistry

log = logging.getLogger(__name__)
EVENT_LOOP = "event-buffer"
CONTROL_LOOP = "control"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    concurrency: int = 10

    @classmethod
    def parse(cls, text: str) -> QueueSpec:
        """``reports`` or ``reports:4``."""
        name, sep, count = text.strip().rpartition(":")
        if not sep:
            name, count = count, ""
        if not name:
            raise ValueError(f"queue {text!r} has no name")
        if not count:
            return cls(name)
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"concurrency of queue {name!r} must be a positive integer: {text!r}")
        return cls(name, int(count))


def instance_id(settings: Settings) -> str:
    """The settings' instance id, made unique across hosts when it is the pid-based default."""
    if settings.instance in ("", f"worker-{os.getpid()}"):
        return f"worker-{socket.gethostname()}-{os.getpid()}"
    return settings.instance


class WorkerRuntime:
    def __init__(
        self,
        settings: Settings,
        registry: TaskRegistry,
        queues: Sequence[QueueSpec],
        options: WorkerOptions | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        """``clock`` (epoch ms) decides when leases expire and delayed jobs are due; tests
        move it instead of waiting."""
        if not queues:
            raise ValueError("a worker needs at least one queue")
        names = [q.name for q in queues]
        if len(set(names)) != len(names):
            raise ValueError(f"queue listed twice: {names}")
        self.settings = settings
        self.registry = registry
        self.queues = list(queues)
        self.options = options or WorkerOptions()
        self.clock = clock
        self.instance = instance_id(settings)
        self.workers: dict[str, QueueWorker] = {}
        self.crashed = asyncio.Event()
        # The event flusher and the control listener: restarted when they die, /readyz
        # failing meanwhile. A queue loop that dies ends the process instead (``crashed``).
        self.supervisor = Supervisor()
        self._redis: Redis | None = None
        self._events: EventBuffer | None = None
        self._control: ControlListener | None = None
        self._housekeeper: Housekeeper | None = None

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "runtime not started"
        return self._redis

    async def start(self) -> None:
        # No health_check_interval: redis-py would then read the clock before every
        # command, a measurable cost per job; dead connections still surface as errors.
        self._redis = Redis.from_url(self.settings.redis_url)
        await self._redis.ping()
        self._events = EventBuffer(
            self._redis, self.settings.stream_maxlen, self.options.flush_delay_s
        )
        self.supervisor.start(EVENT_LOOP, self._events.run)
        for q in self.queues:
            self.workers[q.name] = QueueWorker(
                queue=q.name,
                concurrency=q.concurrency,
                registry=self.registry,
                redis=self._redis,
                events=self._events,
                instance=self.instance,
                options=self.options,
                clock=self.clock,
            )
        self._control = ControlListener(self._redis, self.workers)
        await self._control.start()  # learn which queues are paused before picking anything
        self.supervisor.start(CONTROL_LOOP, self._control.listen)
        self._housekeeper = Housekeeper(
            self.settings.redis_url,
            self.instance,
            self.workers,
            self.options,
            self.settings.stream_maxlen,
            self.clock,
        )
        await self._housekeeper.start()
        for name, worker in self.workers.items():
            worker.main_task = asyncio.create_task(worker.main(), name=f"jobdeck-worker-{name}")
            worker.main_task.add_done_callback(self._on_main_done)
        log.info(
            "worker started",
            extra={
                "instance": self.instance,
                "queues": {q.name: q.concurrency for q in self.queues},
                "tasks": self.registry.names(),
            },
        )

    def _on_main_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or all(w.stopping for w in self.workers.values()):
            return
        log.error("a queue loop stopped unexpectedly", exc_info=task.exception())
        self.crashed.set()

    @property
    def alive(self) -> bool:
        return bool(self.workers) and all(
            w.main_task is not None and not w.main_task.done() for w in self.workers.values()
        )

    async def stop(self, grace_s: float | None = None, hurry: asyncio.Event | None = None) -> None:
        """Stop picking, let running jobs finish for ``grace_s``, hand the rest back, close."""
        grace_s = self.options.grace_s if grace_s is None else grace_s
        for worker in self.workers.values():
            worker.stop_picking()
        mains = [w.main_task for w in self.workers.values() if w.main_task is not None]
        await asyncio.gather(*mains, return_exceptions=True)
        running = [t for w in self.workers.values() for t in w.tasks.values() if not t.done()]
        if running and grace_s > 0:
            log.info("waiting for running jobs", extra={"jobs": len(running), "grace_s": grace_s})
            waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(asyncio.wait(running))}
            if hurry is not None:
                waiters.add(asyncio.ensure_future(hurry.wait()))
            _, pending = await asyncio.wait(
                waiters, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
        for worker in self.workers.values():
            await worker.close()
        if self._housekeeper is not None:
            await self._housekeeper.stop()
        await self.supervisor.stop(names=[CONTROL_LOOP, EVENT_LOOP])
        if self._control is not None:
            await self._control.close()
        if self._events is not None:
            await self._events.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        log.info("worker stopped", extra={"instance": self.instance})

    async def __aenter__(self) -> WorkerRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
