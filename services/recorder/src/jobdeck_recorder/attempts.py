"""Per-attempt history: each attempt's worker, start, end, outcome and error (pure, no I/O).

An attempt's row comes from its ``started`` event and its final event (``completed``,
``failed``, ``retrying``, ``cancelled``), in whatever order and however often they arrive:

- ``started`` fills the worker and start time if not yet known;
- a final event sets the outcome, end and error, unless a final event earlier in the
  stream is already recorded for the attempt (``earlier_in_stream``): the stream's order
  decides, not the order in which recorders happened to commit. A final event whose stream
  position is unknown never replaces a recorded one (the first recorded wins then).

``outcome`` is the final event's type (``retrying`` = this attempt failed and another
follows); the error type tells a hand-back (``WorkerShutdown``), a run whose worker died or
stalled (``LeaseExpired``) and a job Redis lost (``JobLost``) from a task's own error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobdeck.events import Event, EventType

RUNNING = "running"
FINAL_TYPES = frozenset(
    {EventType.COMPLETED, EventType.FAILED, EventType.RETRYING, EventType.CANCELLED}
)

StreamId = tuple[int, int]


def parse_stream_id(entry_id: str | None) -> StreamId | None:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; None if absent or not a stream id."""
    if not entry_id:
        return None
    ms, sep, seq = entry_id.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        return None
    return int(ms), int(seq)


def earlier_in_stream(entry: StreamId | None, kept: StreamId | None) -> bool:
    """Whether an event at ``entry`` came before the one kept at ``kept`` (both known)."""
    return entry is not None and kept is not None and entry < kept


@dataclass(slots=True)
class AttemptRow:
    """A row of ``job_attempts``; timestamps are epoch milliseconds."""

    job_id: str
    attempt: int
    worker: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    outcome: str = RUNNING
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    final_at: StreamId | None = None


def tracks(ev: Event) -> bool:
    """Whether ``ev`` says something about an attempt."""
    return ev.type is EventType.STARTED or ev.type in FINAL_TYPES


def apply_attempt(row: AttemptRow, ev: Event, entry: StreamId | None) -> bool:
    """Apply one ``started`` or final event of ``row``'s attempt; whether anything changed."""
    f = ev.fields
    changed = _fill(row, "worker", f.get("worker"))
    changed = _fill(row, "started_at", f.get("started_at")) or changed
    if ev.type not in FINAL_TYPES:
        return changed
    if row.outcome != RUNNING and not earlier_in_stream(entry, row.final_at):
        return changed
    row.outcome = str(ev.type)
    row.finished_at = f.get("finished_at")
    row.final_at = entry
    if ev.type is EventType.COMPLETED:
        row.error_type = row.error_message = row.error_traceback = None
    else:
        row.error_type = f.get("error_type")
        row.error_message = f.get("error_message")
        row.error_traceback = f.get("traceback")
    return True


def _fill(row: AttemptRow, column: str, value: Any) -> bool:
    if value is None or getattr(row, column) is not None:
        return False
    setattr(row, column, value)
    return True
