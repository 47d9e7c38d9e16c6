"""How events change a job's row: pure decisions, no I/O.

A job row carries ``version`` = attempt * 16 + phase of the newest event that set its
state. Events are applied one at a time, in stream order, to the row as Postgres holds it:

- state (status, attempts, times, result, error, worker...) changes only for an event
  whose version is strictly newer than the row's, so a duplicated or late event never
  moves a job backwards; of two final events of one attempt the one earlier in the
  stream wins (the row keeps the stream id of the event that set its version), whatever
  order recorders commit them in (without stream ids, the first recorded wins);
- a late ``started`` of the row's attempt still fills a missing worker or start time;
- ``progress`` counts only while the row is active in that very attempt, and never lowers
  the bar (a redelivered older progress event is ignored);
- identity columns (queue, name, data, options, priority, max_attempts, created_at) come
  from ``added`` whenever it arrives: a row first created by a later event holds
  placeholders until then (``added_attempt`` = 0);
- ``log`` events become ``job_logs`` rows, unique per (job, attempt, seq);
- ``started`` and final events also build each attempt's history row (``attempts``);
- a job's queue is fixed once an ``added`` has set it: an event for that id from another
  queue is a different job reusing the id (the API refuses that; this is the backstop),
  so it is skipped and listed in ``BatchPlan.conflicts`` rather than taking the row over.

Because application is sequential, any split of the stream into batches gives the same
rows as applying events one by one, which is what makes redelivery safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from jobdeck.events import Event, EventType, JobStatus, Phase

from jobdeck_recorder.attempts import (
    AttemptRow,
    StreamId,
    apply_attempt,
    earlier_in_stream,
    tracks,
)


class Keep:
    """Marks a large column (data, options, result) whose stored value stays as it is."""

    _instance: Keep | None = None

    def __new__(cls) -> Keep:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()


@dataclass(slots=True)
class JobRow:
    """The columns of ``jobs`` the recorder writes; timestamps are epoch milliseconds."""

    id: str
    queue: str
    name: str
    status: JobStatus
    created_at: int
    priority: int = 0
    max_attempts: int = 1
    added_attempt: int = 0
    template_id: str | None = None
    schedule_id: str | None = None
    data: Any = KEEP
    options: Any = KEEP
    result: Any = KEEP
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    progress: float = 0.0
    progress_message: str | None = None
    attempts: int = 0
    worker: str | None = None
    run_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    duration_ms: int | None = None
    cancelled_by: str | None = None
    version: int = 0
    version_at: StreamId | None = None  # stream id of the event that set ``version``


@dataclass(frozen=True, slots=True)
class LogLine:
    job_id: str
    attempt: int
    seq: int
    ts: int
    level: str
    message: str


@dataclass(slots=True)
class BatchPlan:
    """What one batch writes: changed rows (existing and new), attempts and log lines."""

    updates: list[JobRow] = field(default_factory=list)
    inserts: list[JobRow] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)
    conflicts: list[Event] = field(default_factory=list)


_STATE_EVENTS = frozenset(
    {
        EventType.ADDED,
        EventType.STARTED,
        EventType.COMPLETED,
        EventType.FAILED,
        EventType.RETRYING,
        EventType.CANCELLED,
    }
)


def conflicts(row: JobRow, ev: Event) -> bool:
    """An event of another queue for a row whose identity an ``added`` already set."""
    return row.added_attempt > 0 and ev.queue != row.queue


def placeholder(ev: Event) -> JobRow:
    """The row a job gets when its first recorded event is not (yet) its ``added``."""
    assert ev.job_id is not None
    return JobRow(
        id=ev.job_id,
        queue=ev.queue,
        name=ev.name or "",
        status=JobStatus.WAITING,
        created_at=ev.ts,
        max_attempts=_int_or(ev.fields.get("max_attempts"), 1),
        data=None,
        options={},
        result=None,
    )


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def apply(row: JobRow, ev: Event, entry: StreamId | None = None) -> bool:
    """Apply one job event (at stream id ``entry``) to ``row`` in place; whether it changed."""
    t = ev.type
    if t is EventType.LOG:
        return False
    if t is EventType.PROGRESS:
        return _apply_progress(row, ev)
    changed = False
    if t is EventType.ADDED:
        changed = _apply_identity(row, ev)
    if t not in _STATE_EVENTS:
        return changed
    if ev.version <= row.version:
        if _cancels_backoff(row, ev):
            _cancelled(row, ev)
            row.version_at = entry
            return True
        if _earlier_final(row, ev, entry):
            _STATE_APPLIERS[t](row, ev)
            row.version_at = entry
            return True
        return _fill_in(row, ev) or changed
    _STATE_APPLIERS[t](row, ev)
    row.version = ev.version
    row.version_at = entry
    return True


def _earlier_final(row: JobRow, ev: Event, entry: StreamId | None) -> bool:
    """A final event of the row's own final version that came earlier in the stream than
    the one recorded (which a recorder committed first): the stream's order wins."""
    return (
        ev.version == row.version
        and ev.phase is Phase.FINISHED
        and earlier_in_stream(entry, row.version_at)
    )


def _apply_identity(row: JobRow, ev: Event) -> bool:
    f = ev.fields
    before = row.created_at
    row.created_at = ev.ts if row.added_attempt == 0 else min(row.created_at, ev.ts)
    if ev.attempt >= row.added_attempt:
        options = f.get("options") or {}
        row.queue = ev.queue
        if ev.name is not None:
            row.name = ev.name
        row.priority = f["priority"]
        row.max_attempts = f["max_attempts"]
        row.data = f.get("data")
        row.options = options
        row.template_id = _opt_str(options.get("template_id"))
        row.schedule_id = _opt_str(options.get("schedule_id"))
        row.added_attempt = ev.attempt
        return True
    return row.created_at != before


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _cancels_backoff(row: JobRow, ev: Event) -> bool:
    """A cancel, numbered with the failed attempt, of a job waiting to retry after it.

    Unambiguous: a cancel that never ran carrying attempt n cannot predate attempt n's
    ``retrying`` (the job would then never have run), so it is the cancel of the backoff.
    """
    return (
        ev.type is EventType.CANCELLED
        and ev.fields.get("started_at") is None
        and row.status is JobStatus.DELAYED
        and ev.version == row.version
    )


def _fill_in(row: JobRow, ev: Event) -> bool:
    """A late ``started`` of the row's own attempt may still say who ran it and when."""
    if ev.type is not EventType.STARTED or ev.attempt != row.attempts:
        return False
    changed = False
    if row.worker is None:
        row.worker = ev.fields["worker"]
        changed = True
    if row.started_at is None and row.status is not JobStatus.CANCELLED:
        row.started_at = ev.fields["started_at"]
        changed = True
    return changed


def _apply_progress(row: JobRow, ev: Event) -> bool:
    if row.status is not JobStatus.ACTIVE or row.attempts != ev.attempt:
        return False
    value = min(max(float(ev.fields["progress"]), 0.0), 100.0)
    if value < row.progress:
        return False
    row.progress = value
    row.progress_message = ev.fields.get("message")
    return True


def _added(row: JobRow, ev: Event) -> None:
    row.status = JobStatus(ev.fields["status"])
    row.attempts = ev.attempt - 1
    row.run_at = ev.fields.get("run_at")
    row.result = None
    row.worker = None
    row.started_at = None
    row.finished_at = None
    row.duration_ms = None
    row.cancelled_by = None
    row.progress = 0.0
    row.progress_message = None


def _started(row: JobRow, ev: Event) -> None:
    row.status = JobStatus.ACTIVE
    row.attempts = ev.attempt
    row.started_at = ev.fields["started_at"]
    row.worker = ev.fields["worker"]
    row.result = None
    row.error_type = row.error_message = row.error_traceback = None
    row.finished_at = None
    row.duration_ms = None
    row.cancelled_by = None
    row.progress = 0.0
    row.progress_message = None
    if row.added_attempt == 0:
        row.max_attempts = _int_or(ev.fields.get("max_attempts"), row.max_attempts)


def _finished(row: JobRow, ev: Event, status: JobStatus) -> None:
    f = ev.fields
    row.status = status
    row.attempts = ev.attempt
    if f.get("started_at") is not None:
        row.started_at = f["started_at"]
    row.finished_at = f["finished_at"]
    row.duration_ms = f.get("duration_ms")
    if row.duration_ms is None and row.started_at is not None:
        row.duration_ms = max(row.finished_at - row.started_at, 0)
    row.cancelled_by = None


def _completed(row: JobRow, ev: Event) -> None:
    _finished(row, ev, JobStatus.COMPLETED)
    row.result = ev.fields.get("result")
    row.error_type = row.error_message = row.error_traceback = None
    row.progress = 100.0


def _failed(row: JobRow, ev: Event) -> None:
    _finished(row, ev, JobStatus.FAILED)
    _error(row, ev)


def _error(row: JobRow, ev: Event) -> None:
    row.result = None
    row.error_type = ev.fields.get("error_type")
    row.error_message = ev.fields.get("error_message")
    row.error_traceback = ev.fields.get("traceback")


def _retrying(row: JobRow, ev: Event) -> None:
    """The attempt failed and another follows: the job waits (delayed) until ``retry_at``."""
    _error(row, ev)
    row.status = JobStatus.DELAYED
    row.attempts = ev.attempt
    if ev.fields.get("started_at") is not None:
        row.started_at = ev.fields["started_at"]
    row.run_at = ev.fields["retry_at"]
    row.finished_at = None
    row.duration_ms = None


def _cancelled(row: JobRow, ev: Event) -> None:
    """Cancelled running (``started_at`` set) or before its attempt ran.

    ``attempts`` counts attempts that ran, so a cancel before the run leaves it as it was;
    the row's ``version`` still records the cancelled attempt's number, which is what a
    manual retry must number its attempt after (``version // 16 + 1``).
    """
    ran = ev.fields.get("started_at") is not None
    attempts = ev.attempt if ran else row.attempts
    _finished(row, ev, JobStatus.CANCELLED)
    row.attempts = attempts
    if not ran:
        row.duration_ms = ev.fields.get("duration_ms")
    row.result = None
    row.cancelled_by = ev.fields.get("by")


_STATE_APPLIERS = {
    EventType.ADDED: _added,
    EventType.STARTED: _started,
    EventType.COMPLETED: _completed,
    EventType.FAILED: _failed,
    EventType.RETRYING: _retrying,
    EventType.CANCELLED: _cancelled,
}


def fold(row: JobRow | None, events: Iterable[Event]) -> JobRow | None:
    """The row after ``events`` (one job's, in stream order); ``row`` itself is not modified."""
    current = None if row is None else replace(row)
    for ev in events:
        if ev.type is EventType.LOG:
            continue
        if current is None:
            if ev.type is EventType.PROGRESS:
                continue
            current = placeholder(ev)
        elif conflicts(current, ev):
            continue
        apply(current, ev)
    return current


def plan_batch(
    events: Sequence[Event],
    existing: dict[str, JobRow],
    entries: Sequence[StreamId | None] | None = None,
    attempts: dict[tuple[str, int], AttemptRow] | None = None,
) -> BatchPlan:
    """Fold a batch's job events (stream order) onto the rows Postgres holds for them.

    ``entries`` are the events' stream ids (None where unknown); ``attempts`` the history
    rows Postgres holds for the batch's jobs.
    """
    plan = BatchPlan()
    rows: dict[str, JobRow] = {}
    changed: set[str] = set()
    history: dict[tuple[str, int], AttemptRow] = {}
    known_attempts = attempts or {}
    seen_logs: set[tuple[str, int, int]] = set()
    for i, ev in enumerate(events):
        job_id = ev.job_id
        if job_id is None:
            continue
        entry = entries[i] if entries is not None else None
        if ev.type is EventType.LOG:
            key = (job_id, ev.attempt, ev.fields["seq"])
            if key not in seen_logs:
                seen_logs.add(key)
                plan.logs.append(
                    LogLine(
                        job_id,
                        ev.attempt,
                        ev.fields["seq"],
                        ev.ts,
                        ev.fields["level"],
                        ev.fields["message"],
                    )
                )
            continue
        row = rows.get(job_id)
        if row is None:
            base = existing.get(job_id)
            if base is not None:
                row = rows[job_id] = replace(base)
            elif ev.type is EventType.PROGRESS:
                continue
            else:
                row = rows[job_id] = placeholder(ev)
                changed.add(job_id)
        if conflicts(row, ev):
            plan.conflicts.append(ev)
            continue
        if apply(row, ev, entry):
            changed.add(job_id)
        if tracks(ev):
            which = (job_id, ev.attempt)
            attempt = history.get(which)
            if attempt is None:
                known = known_attempts.get(which)
                attempt = replace(known) if known is not None else AttemptRow(*which)
            if apply_attempt(attempt, ev, entry) or which in history:
                history[which] = attempt
    for job_id in sorted(changed):
        row = rows[job_id]
        (plan.updates if job_id in existing else plan.inserts).append(row)
    plan.attempts = [history[key] for key in sorted(history)]
    return plan
