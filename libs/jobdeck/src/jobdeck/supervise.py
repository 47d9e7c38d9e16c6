"""Background loops that are restarted when they die, and that make ``/readyz`` say so.

Every service runs a few loops beside its HTTP side (the gateway's stream reader and stats
monitor, the recorder's consumer and janitor, the scheduler's firing loop, the exporter's
consumer, a worker's event flusher and control listener, every process's usage sampler).
A loop that raised, or ended while nobody
asked it to, used to leave a process that answers ``/readyz`` 200 and does nothing. Here
each loop runs under a ``Supervisor``: when it dies the supervisor logs the exception,
counts it, waits (exponential backoff) and starts it again; from its death until it has
run ``settle_s`` without dying again, the supervisor's readiness check fails, so an
orchestrator routes traffic elsewhere and sees the restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from jobdeck.web import READY_CHECKS

log = logging.getLogger(__name__)

LOOP_RESTARTS = Counter(
    "jobdeck_loop_restarts_total", "Background loops restarted after they died", ["loop"]
)
LOOP_UP = Gauge("jobdeck_loop_up", "1 while a background loop runs settled, else 0", ["loop"])


class LoopDown(RuntimeError):
    """A background loop died and has not yet run settled since its restart."""


@dataclass
class LoopState:
    name: str
    factory: Callable[[], Awaitable[None]]
    stop: Callable[[], None] | None = None  # asks the loop to finish what it holds, then end
    task: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    stopping: bool = False
    restarts: int = 0
    last_error: str | None = None
    down_since: float | None = None  # monotonic time of the last death
    started_at: float = 0.0

    def settled(self, now: float, settle_s: float) -> bool:
        return self.down_since is None or (
            self.task is not None and not self.task.done() and now - self.started_at >= settle_s
        )


class Supervisor:
    """Runs named loops; restarts the ones that die; ``check`` is a readiness probe."""

    def __init__(
        self, backoff_min_s: float = 0.5, backoff_max_s: float = 30.0, settle_s: float = 5.0
    ) -> None:
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.settle_s = settle_s
        self.loops: dict[str, LoopState] = {}

    def start(
        self,
        name: str,
        factory: Callable[[], Awaitable[None]],
        stop: Callable[[], None] | None = None,
    ) -> None:
        """Run ``factory()`` as loop ``name`` now, and again each time it dies.

        ``stop``, if given, is how ``Supervisor.stop`` asks the loop to end gracefully
        (finish and acknowledge what it holds) before cancelling it."""
        if name in self.loops:
            raise ValueError(f"loop {name!r} already supervised")
        state = LoopState(name, factory, stop)
        self.loops[name] = state
        LOOP_UP.labels(name).set(1)
        self._launch(state)

    def _launch(self, state: LoopState) -> None:
        state.started_at = time.monotonic()
        state.task = asyncio.create_task(_run(state.factory), name=state.name)
        if state.down_since is not None:  # a restart: up again once it has run settled
            task = state.task
            asyncio.get_running_loop().call_later(
                self.settle_s, lambda: LOOP_UP.labels(state.name).set(int(not task.done()))
            )
        state.watcher = asyncio.create_task(self._watch(state), name=f"{state.name}-supervisor")

    async def _watch(self, state: LoopState) -> None:
        assert state.task is not None
        try:
            await asyncio.shield(state.task)
        except asyncio.CancelledError:
            if state.stopping:
                return
        except Exception:  # the loop's own exception, logged below with its traceback
            pass
        if state.stopping:
            return
        error = _describe(state.task)
        state.restarts += 1
        state.last_error = error
        state.down_since = time.monotonic()
        LOOP_RESTARTS.labels(state.name).inc()
        LOOP_UP.labels(state.name).set(0)
        exc = state.task.exception() if not state.task.cancelled() else None
        log.error(
            "background loop died; restarting",
            exc_info=exc,
            extra={"loop": state.name, "error": error, "restarts": state.restarts},
        )
        delay = min(self.backoff_max_s, self.backoff_min_s * 2 ** min(state.restarts - 1, 16))
        await asyncio.sleep(delay)
        if not state.stopping:
            self._launch(state)

    async def check(self) -> None:
        """Readiness: raise ``LoopDown`` while any loop is dead or not yet settled again."""
        now = time.monotonic()
        down = []
        for state in self.loops.values():
            if state.stopping or state.settled(now, self.settle_s):
                continue
            down.append(f"{state.name} ({state.last_error}; restarts: {state.restarts})")
        if down:
            raise LoopDown("background loop down: " + ", ".join(down))

    def status(self) -> dict[str, dict[str, object]]:
        """Per loop: running, restarts, last error (for logs and ops endpoints)."""
        now = time.monotonic()
        return {
            name: {
                "running": s.task is not None and not s.task.done(),
                "settled": s.settled(now, self.settle_s),
                "restarts": s.restarts,
                "lastError": s.last_error,
            }
            for name, s in self.loops.items()
        }

    async def stop(self, grace_s: float = 0.0, names: Iterable[str] | None = None) -> None:
        """Stop restarting the loops ``names`` (all by default) and end them: ask each loop
        that has a ``stop`` to finish, wait up to ``grace_s``, cancel the rest. Each part of
        a process stops its own loops, in the order its resources close."""
        chosen = list(self.loops) if names is None else [n for n in names if n in self.loops]
        states = [self.loops[name] for name in chosen if not self.loops[name].stopping]
        graceful, tasks, watchers = [], [], []
        for state in states:
            state.stopping = True
            if state.watcher is not None:
                state.watcher.cancel()
                watchers.append(state.watcher)
            if state.task is None or state.task.done():
                continue
            tasks.append(state.task)
            if state.stop is not None:
                state.stop()
                graceful.append(state.task)
            else:  # nothing to finish: it only waits for its next round
                state.task.cancel()
        if graceful and grace_s > 0:
            await asyncio.wait(graceful, timeout=grace_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *watchers, return_exceptions=True)


async def _run(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


def _describe(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return "ended"
    return f"{exc.__class__.__name__}: {exc}"[:300]


SUPERVISOR = web.AppKey("supervisor", Supervisor)


def supervise(app: web.Application, supervisor: Supervisor | None = None) -> Supervisor:
    """The supervisor of ``app``'s loops (``supervisor``, or a new one, on the first call;
    the same one after), its check part of the app's ``/readyz``."""
    if SUPERVISOR not in app:
        app[SUPERVISOR] = supervisor if supervisor is not None else Supervisor()
        app[READY_CHECKS]["loops"] = app[SUPERVISOR].check
    return app[SUPERVISOR]
