"""The events one run of a job publishes, built from a ``JobRun`` (no I/O here).

Field names and meanings are the contract in ``proto/events.schema.json``; the recorder and
the gateway rely on them.
"""

from __future__ import annotations

import json
import math
import traceback
from dataclasses import dataclass
from typing import Any

from jobdeck.events import Event, EventType, now_ms

MAX_RESULT_CHARS = 64_000
MAX_TRACEBACK_CHARS = 16_000
MAX_MESSAGE_CHARS = 8_000
SHUTDOWN_ERROR = "WorkerShutdown"


@dataclass(slots=True)
class JobRun:
    """One attempt of one job on this worker."""

    job_id: str
    queue: str
    name: str | None
    attempt: int
    max_attempts: int
    started_at: int | None

    def event(self, etype: EventType, ts: int, fields: dict[str, Any]) -> Event:
        return Event(
            type=etype,
            queue=self.queue,
            job_id=self.job_id,
            attempt=self.attempt,
            name=self.name,
            ts=ts,
            fields=fields,
        )

    def _finished(self, finished_at: int) -> dict[str, Any]:
        duration = None if self.started_at is None else max(finished_at - self.started_at, 0)
        return {"started_at": self.started_at, "finished_at": finished_at, "duration_ms": duration}


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + "… [truncated]"


def jsonable(result: Any) -> Any:
    """The result as plain JSON values (what clients will see), bounded in size."""
    if result is None or isinstance(result, bool | int):
        return result
    if isinstance(result, float):
        return result if math.isfinite(result) else str(result)
    if isinstance(result, str):
        return truncate(result, MAX_RESULT_CHARS)
    text = json.dumps(result, default=str)
    if len(text) > MAX_RESULT_CHARS:
        return {"truncated": True, "preview": text[:1000]}
    return json.loads(text)


def error_fields(exc: BaseException) -> dict[str, Any]:
    tb = "".join(traceback.format_exception(exc))
    return {
        "error_type": type(exc).__name__,
        "error_message": truncate(str(exc) or type(exc).__name__, MAX_MESSAGE_CHARS),
        "traceback": tb[-MAX_TRACEBACK_CHARS:],
    }


def started(run: JobRun, worker: str, handed_back: int = 0) -> Event:
    """``handed_back``: earlier runs given back by stopping workers, not charged to the budget
    (a job of ``max_attempts`` 1 handed back once runs as attempt 2, still within budget)."""
    assert run.started_at is not None
    fields = {
        "started_at": run.started_at,
        "worker": worker,
        "max_attempts": run.max_attempts,
        "handed_back": handed_back,
    }
    return run.event(EventType.STARTED, run.started_at, fields)


def progress(run: JobRun, pct: float, message: str | None) -> Event:
    fields: dict[str, Any] = {"progress": pct}
    if message is not None:
        fields["message"] = truncate(message, MAX_MESSAGE_CHARS)
    return run.event(EventType.PROGRESS, now_ms(), fields)


def log(run: JobRun, seq: int, level: str, message: str) -> Event:
    fields = {"seq": seq, "level": level, "message": truncate(message, MAX_MESSAGE_CHARS)}
    return run.event(EventType.LOG, now_ms(), fields)


def completed(run: JobRun, result: Any, finished_at: int | None = None) -> Event:
    finished_at = now_ms() if finished_at is None else finished_at
    fields = {**run._finished(finished_at), "result": jsonable(result)}
    return run.event(EventType.COMPLETED, finished_at, fields)


def failed(run: JobRun, error: dict[str, Any], finished_at: int | None = None) -> Event:
    finished_at = now_ms() if finished_at is None else finished_at
    return run.event(EventType.FAILED, finished_at, {**run._finished(finished_at), **error})


def retrying(
    run: JobRun, error: dict[str, Any], retry_at: int, finished_at: int | None = None
) -> Event:
    finished_at = now_ms() if finished_at is None else finished_at
    fields = {**run._finished(finished_at), **error, "retry_at": retry_at}
    return run.event(EventType.RETRYING, finished_at, fields)


def handed_back(run: JobRun, finished_at: int) -> Event:
    """The worker stopped before the attempt finished; the job runs again elsewhere at once."""
    error = {
        "error_type": SHUTDOWN_ERROR,
        "error_message": "worker shutdown: the job was handed back to its queue",
        "traceback": None,
    }
    return retrying(run, error, retry_at=finished_at, finished_at=finished_at)


def cancelled(run: JobRun, by: str | None, finished_at: int) -> Event:
    fields = {"started_at": run.started_at, "finished_at": finished_at, "by": by}
    if run.started_at is not None:
        fields["duration_ms"] = max(finished_at - run.started_at, 0)
    return run.event(EventType.CANCELLED, finished_at, fields)
