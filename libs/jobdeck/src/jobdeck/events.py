"""The internal event contract (``proto/events.schema.json``): types, fields and msgpack codec.

Every event carries a schema version ``v``, a ``type``, a timestamp ``ts`` (epoch
milliseconds) and a ``queue``; job events also carry ``job_id``, ``attempt`` and ``name``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

import msgpack

from jobdeck import JobdeckError

SCHEMA_VERSION = 1


class EventType(StrEnum):
    ADDED = "added"
    STARTED = "started"
    PROGRESS = "progress"
    LOG = "log"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    QUEUE_PAUSED = "queue.paused"
    QUEUE_RESUMED = "queue.resumed"
    # Written by the gateway when a threshold is crossed or cleared (``queue`` is "*" for
    # system-wide alerts); not a job event: the recorder ignores it.
    ALERT = "alert"
    # Written by the API when finished jobs are deleted (``job_ids``, ``by``, ``reason``);
    # not a job event: the recorder ignores it (the API deleted the rows), the gateway
    # sends it as ``jobRemoved``.
    REMOVED = "removed"
    # Written by the exporter about one export (``queue`` is "*"; ``by`` is the requester,
    # the only one the gateway passes them to); not job events: the recorder ignores them.
    EXPORT_PROGRESS = "export.progress"
    EXPORT_COMPLETED = "export.completed"
    EXPORT_FAILED = "export.failed"


class JobStatus(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Phase(IntEnum):
    """Order of events within one attempt; a job row never moves to a lower (attempt, phase)."""

    QUEUED = 0
    RUNNING = 1
    FINISHED = 3


JOB_EVENTS = {
    EventType.ADDED,
    EventType.STARTED,
    EventType.PROGRESS,
    EventType.LOG,
    EventType.COMPLETED,
    EventType.FAILED,
    EventType.RETRYING,
    EventType.CANCELLED,
}

# Fields each event type must carry beyond the common ones.
REQUIRED_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.ADDED: ("status", "priority", "max_attempts"),
    EventType.STARTED: ("started_at", "worker", "max_attempts"),
    EventType.PROGRESS: ("progress",),
    EventType.LOG: ("seq", "level", "message"),
    EventType.COMPLETED: ("started_at", "finished_at", "duration_ms"),
    EventType.FAILED: ("started_at", "finished_at", "duration_ms", "error_type", "error_message"),
    EventType.RETRYING: ("started_at", "finished_at", "error_type", "error_message", "retry_at"),
    EventType.CANCELLED: ("started_at", "finished_at"),
    EventType.QUEUE_PAUSED: (),
    EventType.QUEUE_RESUMED: (),
    EventType.ALERT: ("severity", "kind", "state", "value", "threshold", "message"),
    EventType.REMOVED: ("job_ids",),
    EventType.EXPORT_PROGRESS: ("export_id", "by", "rows_done"),
    EventType.EXPORT_COMPLETED: ("export_id", "by", "rows", "bytes", "url"),
    EventType.EXPORT_FAILED: ("export_id", "by", "error"),
}

LOG_LEVELS = ("debug", "info", "warning", "error")


class MalformedEvent(JobdeckError):
    """A stream entry is not a valid jobdeck event."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the ``jobdeck:events`` stream.

    ``fields`` holds the type-specific fields listed in ``REQUIRED_FIELDS`` (and optional
    ones such as ``data``, ``result``, ``traceback``, ``message``, ``by``).
    """

    type: EventType
    queue: str
    job_id: str | None = None
    attempt: int = 0
    name: str | None = None
    ts: int = field(default_factory=now_ms)
    fields: dict[str, Any] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @property
    def phase(self) -> Phase:
        if self.type in (EventType.ADDED,):
            return Phase.QUEUED
        if self.type in (EventType.STARTED, EventType.PROGRESS, EventType.LOG):
            return Phase.RUNNING
        return Phase.FINISHED

    @property
    def version(self) -> int:
        """Monotonic position of this event in its job's life, used to refuse going backwards."""
        return job_version(self.attempt, self.phase)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = str(self.type)
        return d


VERSION_STRIDE = 16  # room for the phases of one attempt


def job_version(attempt: int, phase: Phase) -> int:
    """A job row's ``version``: attempt and phase of its latest event, in one ordered integer."""
    return attempt * VERSION_STRIDE + int(phase)


def current_attempt(attempts: int, version: int) -> int:
    """The attempt a job's latest event belongs to (at least 1, even if it never ran)."""
    return max(attempts, version // VERSION_STRIDE, 1)


def version_phase(version: int) -> int:
    return version % VERSION_STRIDE


def encode(event: Event) -> bytes:
    body: dict[str, Any] = {
        "v": event.v,
        "type": str(event.type),
        "ts": event.ts,
        "queue": event.queue,
        **event.fields,
    }
    if event.job_id is not None:
        body["job_id"] = event.job_id
        body["attempt"] = event.attempt
        body["name"] = event.name
    return msgpack.packb(body, use_bin_type=True, default=_fallback)  # type: ignore[no-any-return]


def _fallback(value: object) -> object:
    """Encode values msgpack does not know (sets, datetimes, decimals) as strings or lists."""
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


_COMMON = ("v", "type", "ts", "queue", "job_id", "attempt", "name")


def decode(raw: bytes) -> Event:
    """Decode and validate one stream entry; raise ``MalformedEvent`` saying what is wrong."""
    try:
        body = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:
        raise MalformedEvent(f"not msgpack: {exc.__class__.__name__}") from exc
    if not isinstance(body, dict):
        raise MalformedEvent("event is not a map")
    if body.get("v") != SCHEMA_VERSION:
        raise MalformedEvent(f"unsupported schema version {body.get('v')!r}")
    try:
        etype = EventType(str(body.get("type")))
    except ValueError as exc:
        raise MalformedEvent(f"unknown event type {body.get('type')!r}") from exc
    queue, ts = body.get("queue"), body.get("ts")
    if not isinstance(queue, str) or not queue:
        raise MalformedEvent("missing field 'queue'")
    if not isinstance(ts, int):
        raise MalformedEvent("missing field 'ts'")
    job_id, attempt = body.get("job_id"), body.get("attempt", 0)
    if etype in JOB_EVENTS:
        if not isinstance(job_id, str) or not job_id:
            raise MalformedEvent("missing field 'job_id'")
        if not isinstance(attempt, int) or attempt < 1:
            raise MalformedEvent("field 'attempt' must be a positive integer")
    missing = [f for f in REQUIRED_FIELDS[etype] if f not in body]
    if missing:
        raise MalformedEvent(f"{etype} event missing field(s) {', '.join(missing)}")
    name = body.get("name")
    return Event(
        type=etype,
        queue=queue,
        job_id=job_id,
        attempt=attempt if isinstance(attempt, int) else 0,
        name=name if isinstance(name, str) else None,
        ts=ts,
        fields={k: v for k, v in body.items() if k not in _COMMON},
    )
