"""What a task function receives: the job's identity and data, and ways to report back."""

from __future__ import annotations

import math
from typing import Any, Protocol

from jobdeck.events import LOG_LEVELS, Event

from jobdeck_worker import lifecycle
from jobdeck_worker.lifecycle import JobRun


class EventSink(Protocol):
    def emit(self, job_id: str, event: Event, coalesce: bool = False) -> None: ...

    async def backpressure(self) -> None: ...


class JobContext:
    """The running job as its task sees it.

    ``progress`` and ``log`` only buffer an event: the runtime writes buffered events in
    small batches, and always before the job's final event, so they cost the task almost
    nothing and never arrive after the job has finished.
    """

    __slots__ = ("_run", "_seq", "_sink", "data")

    def __init__(self, run: JobRun, data: Any, sink: EventSink) -> None:
        self._run = run
        self._sink = sink
        self._seq = 0
        self.data = data

    @property
    def job_id(self) -> str:
        return self._run.job_id

    @property
    def queue(self) -> str:
        return self._run.queue

    @property
    def name(self) -> str:
        return self._run.name or ""

    @property
    def attempt(self) -> int:
        return self._run.attempt

    @property
    def max_attempts(self) -> int:
        return self._run.max_attempts

    async def progress(self, pct: float, message: str | None = None) -> None:
        """Report progress in percent (clamped to 0..100), with an optional message."""
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct):
            raise ValueError(f"progress must be a finite number, got {pct!r}")
        if message is not None and not isinstance(message, str):
            message = str(message)
        pct = min(max(pct, 0), 100)
        self._sink.emit(self.job_id, lifecycle.progress(self._run, pct, message), coalesce=True)
        await self._sink.backpressure()

    def log(self, level: str, message: str) -> None:
        """Append a line to the job's log; ``level`` is debug, info, warning or error."""
        normalized = str(level).lower()
        if normalized == "warn":
            normalized = "warning"
        if normalized not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        self._seq += 1
        event = lifecycle.log(self._run, self._seq, normalized, str(message))
        self._sink.emit(self.job_id, event)

    def __repr__(self) -> str:
        return f"<JobContext {self.queue}/{self.name} {self.job_id} attempt {self.attempt}>"
