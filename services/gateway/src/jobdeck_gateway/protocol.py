"""Stream events → the Socket.IO events clients receive (``proto/socketio.schema.json``).

Pure functions, no I/O. Payloads are built from an allowlist of fields so that job
``data``, ``result``, tracebacks or anything else a producer adds can never leak to a
socket: a field reaches clients only if it is named here (and in the schema).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from jobdeck.events import Event, EventType, JobStatus

NAMESPACE = "/jobs"
MAX_ERROR_MESSAGE = 1000
MAX_LOG_MESSAGE = 2000


class SocketEvent(StrEnum):
    """Events the server emits to clients."""

    CONNECTED = "connected"
    JOB_UPDATE = "jobUpdate"
    JOB_ADDED = "jobAdded"
    JOB_COMPLETED = "jobCompleted"
    JOB_FAILED = "jobFailed"
    JOB_PROGRESS = "jobProgress"
    JOB_LOG = "jobLog"
    JOB_REMOVED = "jobRemoved"
    QUEUE_STATS = "queueStats"
    QUEUE_STATE_CHANGE = "queueStateChange"
    SYSTEM_STATS = "systemStats"
    ALERT = "alert"
    EVENTS_DROPPED = "eventsDropped"
    TOKEN_EXPIRED = "tokenExpired"
    EXPORT_PROGRESS = "exportProgress"
    EXPORT_COMPLETED = "exportCompleted"
    EXPORT_FAILED = "exportFailed"


class RoomKind(StrEnum):
    QUEUE = "queue"
    STATS = "stats"
    JOB = "job"
    ALL = "all"
    USER = "user"


ALL_ROOM = "all"


def queue_room(queue: str) -> str:
    return f"queue:{queue}"


def stats_room(queue: str) -> str:
    """A queue's stats and state only (queueStats, queueStateChange), none of its job events:
    what an overview page needs, at a cost that does not grow with the queue's traffic."""
    return f"stats:{queue}"


def job_room(job_id: str) -> str:
    return f"job:{job_id}"


def user_room(sub: str) -> str:
    """Every socket of one user (token ``sub``), joined at connect: their exports' events."""
    return f"user:{sub}"


def room_kind(room: str) -> RoomKind:
    return RoomKind(room.split(":", 1)[0])


Messages = tuple[tuple[SocketEvent, dict[str, Any]], ...]


class Outgoing:
    """What one stream event becomes: the socket events and the rooms that may receive them.

    ``to_everyone`` marks events (alerts) that go to every connected client allowed to see
    the queue, subscribed or not. The payloads are built on first use of ``messages``: on
    a replica most stream events reach no client (nobody there watches that queue or job),
    and building their payloads was a third of the fan-out's time per event.
    """

    __slots__ = ("_build", "_messages", "queue", "rooms", "to_everyone")

    def __init__(
        self,
        build: Callable[[], Messages],
        rooms: tuple[str, ...],
        queue: str,
        to_everyone: bool = False,
    ) -> None:
        self._build = build
        self._messages: Messages | None = None
        self.rooms = rooms
        self.queue = queue
        self.to_everyone = to_everyone

    @property
    def messages(self) -> Messages:
        if self._messages is None:
            self._messages = self._build()
        return self._messages


# Status a job has after each lifecycle event (a retrying job waits for its backoff).
STATUS_AFTER: dict[EventType, JobStatus] = {
    EventType.STARTED: JobStatus.ACTIVE,
    EventType.RETRYING: JobStatus.DELAYED,
    EventType.COMPLETED: JobStatus.COMPLETED,
    EventType.FAILED: JobStatus.FAILED,
    EventType.CANCELLED: JobStatus.CANCELLED,
}

# stream field → payload key, per event type (the allowlist).
_FIELDS: dict[EventType, tuple[tuple[str, str], ...]] = {
    EventType.ADDED: (
        ("priority", "priority"),
        ("max_attempts", "maxAttempts"),
        ("run_at", "runAt"),
        ("by", "by"),
    ),
    EventType.STARTED: (
        ("started_at", "startedAt"),
        ("worker", "worker"),
        ("max_attempts", "maxAttempts"),
    ),
    EventType.COMPLETED: (
        ("started_at", "startedAt"),
        ("finished_at", "finishedAt"),
        ("duration_ms", "durationMs"),
    ),
    EventType.FAILED: (
        ("started_at", "startedAt"),
        ("finished_at", "finishedAt"),
        ("duration_ms", "durationMs"),
        ("error_type", "errorType"),
        ("error_message", "errorMessage"),
    ),
    EventType.RETRYING: (
        ("started_at", "startedAt"),
        ("finished_at", "finishedAt"),
        ("duration_ms", "durationMs"),
        ("error_type", "errorType"),
        ("error_message", "errorMessage"),
        ("retry_at", "retryAt"),
    ),
    EventType.CANCELLED: (
        ("started_at", "startedAt"),
        ("finished_at", "finishedAt"),
        ("by", "by"),
    ),
}


def _scalar(value: Any) -> str | int | float | bool | None:
    """Only scalars leave the gateway; anything structured is dropped rather than sent."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return None


def _clip(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _job_base(event: Event, event_id: str) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "type": str(event.type),
        "ts": event.ts,
        "queue": event.queue,
        "jobId": event.job_id,
        "name": event.name,
        "attempt": event.attempt,
    }


def job_update(event: Event, event_id: str) -> dict[str, Any]:
    """The ``jobUpdate`` payload: the job's new status and the facts of this transition."""
    payload = _job_base(event, event_id)
    if event.type is EventType.ADDED:
        status = event.fields.get("status")
        payload["status"] = (
            status if status in (JobStatus.WAITING, JobStatus.DELAYED) else "waiting"
        )
    else:
        payload["status"] = str(STATUS_AFTER[event.type])
    for src, dst in _FIELDS.get(event.type, ()):
        value = event.fields.get(src)
        if dst == "errorMessage":
            payload[dst] = _clip(value, MAX_ERROR_MESSAGE)
        else:
            payload[dst] = _scalar(value)
    return payload


def job_progress(event: Event, event_id: str) -> dict[str, Any]:
    payload = _job_base(event, event_id)
    progress = event.fields.get("progress")
    payload["progress"] = progress if isinstance(progress, int | float) else 0
    payload["message"] = _clip(event.fields.get("message"), MAX_ERROR_MESSAGE)
    return payload


def job_log(event: Event, event_id: str) -> dict[str, Any]:
    payload = _job_base(event, event_id)
    payload["seq"] = _scalar(event.fields.get("seq"))
    payload["level"] = _scalar(event.fields.get("level"))
    payload["message"] = _clip(event.fields.get("message"), MAX_LOG_MESSAGE) or ""
    return payload


def queue_state_change(event: Event, event_id: str) -> dict[str, Any]:
    paused = event.type is EventType.QUEUE_PAUSED
    return {
        "eventId": event_id,
        "ts": event.ts,
        "queue": event.queue,
        "state": "paused" if paused else "resumed",
        "paused": paused,
        "by": _scalar(event.fields.get("by")),
    }


def alert(event: Event, event_id: str) -> dict[str, Any]:
    f = event.fields
    return {
        "eventId": event_id,
        "ts": event.ts,
        "queue": None if event.queue == "*" else event.queue,
        "kind": _scalar(f.get("kind")),
        "severity": _scalar(f.get("severity")),
        "state": _scalar(f.get("state")),
        "value": _scalar(f.get("value")),
        "threshold": _scalar(f.get("threshold")),
        "message": _clip(f.get("message"), MAX_ERROR_MESSAGE) or "",
    }


def job_removed(event: Event, event_id: str, job_ids: list[str]) -> dict[str, Any]:
    reason = event.fields.get("reason")
    return {
        "eventId": event_id,
        "ts": event.ts,
        "queue": event.queue,
        "jobIds": job_ids,
        "by": _scalar(event.fields.get("by")),
        "reason": reason if reason in ("deleted", "cleaned") else "deleted",
    }


_JOB_ROOMS_ONLY = {EventType.LOG}

_EXPORT_EVENTS = {
    EventType.EXPORT_PROGRESS: SocketEvent.EXPORT_PROGRESS,
    EventType.EXPORT_COMPLETED: SocketEvent.EXPORT_COMPLETED,
    EventType.EXPORT_FAILED: SocketEvent.EXPORT_FAILED,
}


def export_payload(event: Event, event_id: str) -> dict[str, Any]:
    """An ``export.*`` event for its requester: progress, the download URL, or the reason."""
    f = event.fields
    payload: dict[str, Any] = {"eventId": event_id, "ts": event.ts, "exportId": f.get("export_id")}
    if event.type is EventType.EXPORT_PROGRESS:
        done = f.get("rows_done") if isinstance(f.get("rows_done"), int) else 0
        estimated = f.get("rows_estimated") if isinstance(f.get("rows_estimated"), int) else None
        payload["rowsDone"], payload["rowsEstimated"] = done, estimated
        payload["progress"] = min(1.0, done / estimated) if estimated else None
    elif event.type is EventType.EXPORT_COMPLETED:
        for src, dst in (("url", "url"), ("rows", "rows"), ("bytes", "bytes"), ("format", "format"),
                         ("filename", "filename"), ("expires_at", "expiresAt")):  # fmt: skip
            payload[dst] = _scalar(f.get(src))
    else:
        payload["error"] = _clip(f.get("error"), MAX_ERROR_MESSAGE) or ""
    return payload


def outgoing(event: Event, event_id: str) -> Outgoing:
    """Map one stream event to what clients receive and which rooms may receive it."""
    t = event.type
    if t is EventType.ALERT:
        return Outgoing(
            lambda: ((SocketEvent.ALERT, alert(event, event_id)),), (), event.queue, True
        )
    if t in _EXPORT_EVENTS:
        by = event.fields.get("by")
        return Outgoing(
            lambda: ((_EXPORT_EVENTS[t], export_payload(event, event_id)),),
            (user_room(str(by)),) if by else (),
            event.queue,
        )
    if t in (EventType.QUEUE_PAUSED, EventType.QUEUE_RESUMED):
        rooms = (queue_room(event.queue), stats_room(event.queue), ALL_ROOM)
        return Outgoing(
            lambda: ((SocketEvent.QUEUE_STATE_CHANGE, queue_state_change(event, event_id)),),
            rooms,
            event.queue,
        )
    if t is EventType.REMOVED:
        ids = [i for i in event.fields.get("job_ids") or () if isinstance(i, str)]
        removed_rooms = (queue_room(event.queue), ALL_ROOM, *(job_room(i) for i in ids))
        return Outgoing(
            lambda: ((SocketEvent.JOB_REMOVED, job_removed(event, event_id, ids)),),
            removed_rooms,
            event.queue,
        )
    assert event.job_id is not None  # decode() guarantees it for job events
    if t in _JOB_ROOMS_ONLY:
        return Outgoing(
            lambda: ((SocketEvent.JOB_LOG, job_log(event, event_id)),),
            (job_room(event.job_id),),
            event.queue,
        )
    rooms = (queue_room(event.queue), job_room(event.job_id), ALL_ROOM)
    if t is EventType.PROGRESS:
        return Outgoing(
            lambda: ((SocketEvent.JOB_PROGRESS, job_progress(event, event_id)),),
            rooms,
            event.queue,
        )
    return Outgoing(lambda: _job_messages(event, event_id), rooms, event.queue)


def _job_messages(event: Event, event_id: str) -> Messages:
    """A lifecycle event: ``jobUpdate``, after its specific event when it has one."""
    update = job_update(event, event_id)
    specific = _SPECIFIC.get(event.type)
    if specific is None:
        return ((SocketEvent.JOB_UPDATE, update),)
    return ((specific, update), (SocketEvent.JOB_UPDATE, update))


_SPECIFIC = {
    EventType.ADDED: SocketEvent.JOB_ADDED,
    EventType.COMPLETED: SocketEvent.JOB_COMPLETED,
    EventType.FAILED: SocketEvent.JOB_FAILED,
}


def parse_event_id(value: object) -> tuple[int, int] | None:
    """A Redis stream id ``ms-seq`` as a comparable tuple, or None if it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    ms, sep, seq = value.partition("-")
    if not ms.isdigit() or (sep and not seq.isdigit()):
        return None
    return int(ms), int(seq) if sep else 0


def format_event_id(eid: tuple[int, int]) -> str:
    return f"{eid[0]}-{eid[1]}"


def beyond_stream_end(last_event_id: str, stream_last: tuple[int, int]) -> str | None:
    """Why ``last_event_id`` cannot be resumed from, or None if it can.

    An id past the stream's last generated entry was never handed to any client by any
    replica (they all read the same stream): skipping up to it would silence the client
    until the stream got there, possibly for good. Any id up to the last entry is fine,
    including one this replica's reader has not reached yet (another replica was ahead).
    """
    start = parse_event_id(last_event_id)
    if start is None or start <= stream_last:
        return None
    return (
        f"lastEventId {last_event_id!r} is beyond the last event in the stream"
        f" ({format_event_id(stream_last)!r}); pass an eventId you received"
    )
