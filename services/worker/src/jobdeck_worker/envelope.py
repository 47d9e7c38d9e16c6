"""The single argument of ``jobdeck.run``: ``JobSpec.envelope()``, read defensively.

A job written by an older or foreign producer must fail with a clear message, never crash
the worker, so every field is checked and defaulted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobdeck.queues import JobSpec

from jobdeck_worker.errors import MalformedJob

_DEFAULTS = JobSpec(queue="", name="")


def _int(raw: dict[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedJob(f"job envelope field {key!r} must be a number, got {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class Envelope:
    name: str
    data: Any
    max_attempts: int
    backoff_ms: int
    timeout_s: float | None
    attempt_offset: int
    priority: int

    @classmethod
    def parse(cls, raw: Any) -> Envelope:
        if not isinstance(raw, dict):
            raise MalformedJob(f"job envelope must be a map, got {type(raw).__name__}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise MalformedJob("job envelope has no task name")
        timeout = raw.get("timeout_s", _DEFAULTS.timeout_s)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise MalformedJob(f"job envelope field 'timeout_s' must be a number, got {timeout!r}")
        return cls(
            name=name,
            data=raw.get("data"),
            max_attempts=max(_int(raw, "max_attempts", _DEFAULTS.max_attempts), 1),
            backoff_ms=max(_int(raw, "backoff_ms", _DEFAULTS.backoff_ms), 0),
            timeout_s=None if timeout is None else float(timeout),
            attempt_offset=max(_int(raw, "attempt_offset", 0), 0),
            priority=_int(raw, "priority", 0),
        )
