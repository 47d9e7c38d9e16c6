"""Type checks on decoded events before they may touch Postgres.

``jobdeck.events.decode`` checks that the required fields are present; the recorder also
needs them to have the right types and ranges, because one value Postgres refuses (a
string for a timestamp, a sequence number past int4) would otherwise fail every retry of
its whole batch. An event that fails here is dead-lettered like any other malformed one.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from jobdeck.events import LOG_LEVELS, Event, EventType, JobStatus, MalformedEvent

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
ADDED_STATUSES = (str(JobStatus.WAITING), str(JobStatus.DELAYED))


class InvalidField(MalformedEvent):
    """An event field has the wrong type or is out of range."""


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _ms(ev: Event, key: str, nullable: bool = False) -> None:
    value = ev.fields.get(key)
    if value is None and nullable:
        return
    if not _int(value) or not 0 <= value <= MS_MAX:
        raise InvalidField(f"{ev.type} field {key!r} must be epoch milliseconds, got {value!r}")


def _str(ev: Event, key: str, nullable: bool = False) -> None:
    value = ev.fields.get(key)
    if value is None and nullable:
        return
    if not isinstance(value, str):
        raise InvalidField(f"{ev.type} field {key!r} must be a string, got {type(value).__name__}")


def _bounded(ev: Event, key: str, low: int, high: int, nullable: bool = False) -> None:
    value = ev.fields.get(key)
    if value is None and nullable:
        return
    if not _int(value) or not low <= value <= high:
        raise InvalidField(f"{ev.type} field {key!r} must be an integer in [{low}, {high}]")


def check(ev: Event) -> None:
    """Raise ``InvalidField`` unless every field the recorder writes is well typed."""
    if not 0 <= ev.ts <= MS_MAX:
        raise InvalidField(f"field 'ts' out of range: {ev.ts}")
    if ev.attempt > INT4_MAX:
        raise InvalidField("field 'attempt' out of range")
    if ev.job_id is not None and len(ev.job_id) > 1_000:
        raise InvalidField("field 'job_id' longer than 1000 characters")
    t = ev.type
    if t is EventType.ADDED:
        if ev.fields.get("status") not in ADDED_STATUSES:
            raise InvalidField(f"added field 'status' must be one of {', '.join(ADDED_STATUSES)}")
        _bounded(ev, "priority", -INT4_MAX, INT4_MAX)
        _bounded(ev, "max_attempts", 0, INT4_MAX)
        _ms(ev, "run_at", nullable=True)
        _str(ev, "by", nullable=True)
        options = ev.fields.get("options")
        if options is not None:
            if not isinstance(options, dict):
                raise InvalidField("added field 'options' must be a map")
            for key in ("template_id", "schedule_id"):
                if options.get(key) is not None and not isinstance(options[key], str | int):
                    raise InvalidField(f"added option {key!r} must be a string")
    elif t is EventType.STARTED:
        _ms(ev, "started_at")
        _str(ev, "worker")
        _bounded(ev, "max_attempts", 0, INT4_MAX, nullable=True)
    elif t is EventType.PROGRESS:
        value = ev.fields.get("progress")
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise InvalidField("progress field 'progress' must be a finite number")
        _str(ev, "message", nullable=True)
    elif t is EventType.LOG:
        _bounded(ev, "seq", 0, INT4_MAX)
        if ev.fields.get("level") not in LOG_LEVELS:
            raise InvalidField(f"log field 'level' must be one of {', '.join(LOG_LEVELS)}")
        _str(ev, "message")
    elif t in (EventType.COMPLETED, EventType.FAILED, EventType.RETRYING, EventType.CANCELLED):
        _ms(ev, "started_at", nullable=True)
        _ms(ev, "finished_at")
        _bounded(ev, "duration_ms", 0, INT8_MAX, nullable=True)
        if t in (EventType.FAILED, EventType.RETRYING):
            _str(ev, "error_type", nullable=True)
            _str(ev, "error_message", nullable=True)
            _str(ev, "traceback", nullable=True)
        if t is EventType.RETRYING:
            _ms(ev, "retry_at")
        if t is EventType.CANCELLED:
            _str(ev, "by", nullable=True)
