"""Writes a batch of events to Postgres in one transaction, with set-based SQL.

The batch's job rows are locked (``SELECT ... FOR UPDATE``), their attempt history read
(writers of an attempt row always hold its job's lock first), the events folded onto them
in Python (``fold.plan_batch``), and the result written with one ``UPDATE ... FROM
unnest(...)``, one ``INSERT ... SELECT FROM unnest(...)``, one upsert of attempt rows and
one insert of log lines; the spans of (queue, job name) that the rows widen are widened in
the same transaction (``spans``).
Driver errors are translated here into ``StoreUnavailable`` (try again later) and
``StoreRejected`` (a value Postgres refuses: isolate the event that carries it).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from jobdeck import JobdeckError
from jobdeck.events import Event, EventType, JobStatus
from jobdeck.sql import load_queries

from jobdeck_recorder.attempts import AttemptRow, StreamId, parse_stream_id
from jobdeck_recorder.fold import KEEP, JobRow, LogLine, plan_batch
from jobdeck_recorder.spans import SpanMemory

MAX_INSERT_RACES = 5


class RecorderError(JobdeckError):
    """The recorder could not record a batch."""


class StoreUnavailable(RecorderError):
    """Postgres is unreachable or refused the batch for now; the batch is retried later."""


class StoreRejected(RecorderError):
    """Postgres refused a value of the batch; retrying the same batch cannot succeed."""


class _InsertRace(Exception):
    """Another writer inserted one of the batch's new rows between our lock and insert."""


QUERIES = load_queries("jobdeck_recorder")


@dataclass(frozen=True, slots=True)
class WriteResult:
    updated: int
    inserted: int
    logs: int
    conflicts: int = 0  # events of another queue for an established row: skipped


# Errors in the data itself (class 22 data exception, class 23 constraint violation).
_REJECTED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# Everything else that means "not now": connection lost or refused, server shutting down,
# deadlock or serialization failure, too many connections, a pool timeout.
_UNAVAILABLE = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a connection broken mid-operation
    OSError,
    asyncio.TimeoutError,
)


# Called inside a batch's transaction with the locked rows as they were and the rows the
# batch wrote (the analytics rollups are kept this way, in step with the jobs).
BatchHook = Callable[[asyncpg.Connection, Mapping[str, JobRow], Sequence[JobRow]], Awaitable[None]]


class JobStore:
    """The recorder's Postgres side."""

    def __init__(self, pool: asyncpg.Pool, on_batch: BatchHook | None = None) -> None:
        self.pool = pool
        self.on_batch = on_batch
        self.spans = SpanMemory()

    async def write(
        self, events: Sequence[Event], entry_ids: Sequence[str] | None = None
    ) -> WriteResult:
        """Record job events (stream order) in one transaction; idempotent under redelivery.

        ``entry_ids``, the events' stream ids, let two final events of one attempt be
        ordered by the stream rather than by which recorder commits first.
        """
        entries = None if entry_ids is None else [parse_stream_id(e) for e in entry_ids]
        for _ in range(MAX_INSERT_RACES):
            try:
                return await self._write_once(events, entries)
            except _InsertRace:
                continue
            except _REJECTED as exc:
                raise StoreRejected(f"postgres refused the batch: {exc}") from exc
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"{exc.__class__.__name__}: {exc}") from exc
        raise StoreUnavailable("rows kept being inserted concurrently by another writer")

    async def _write_once(
        self, events: Sequence[Event], entries: Sequence[StreamId | None] | None
    ) -> WriteResult:
        job_ids = sorted(
            {e.job_id for e in events if e.job_id is not None and e.type is not EventType.LOG}
        )
        widened: list[asyncpg.Record] = []
        async with self.pool.acquire() as conn, conn.transaction():
            existing: dict[str, JobRow] = {}
            attempts: dict[tuple[str, int], AttemptRow] = {}
            if job_ids:
                for record in await conn.fetch(QUERIES["lock_jobs"], job_ids):
                    existing[record["id"]] = row_from_record(record)
                for record in await conn.fetch(QUERIES["attempts_of"], job_ids):
                    attempt = attempt_from_record(record)
                    attempts[(attempt.job_id, attempt.attempt)] = attempt
            unknown = sorted({e.job_id for e in events if e.job_id} - existing.keys())
            if unknown:
                removed = {
                    r["id"]: r["removed_ms"]
                    for r in await conn.fetch(QUERIES["tombstones"], unknown)
                }
                if removed:  # a deleted job's events from before its deletion: dropped
                    keep = [i for i, e in enumerate(events) if not removed_before(e, removed)]
                    events = [events[i] for i in keep]
                    entries = [entries[i] for i in keep] if entries is not None else None
            plan = plan_batch(events, existing, entries, attempts)
            if plan.updates:
                docs = [row_doc(r) for r in plan.updates]
                await conn.execute(QUERIES["update_jobs"], json_param(docs))
            if plan.inserts:
                docs = [row_doc(r) for r in plan.inserts]
                status = await conn.execute(QUERIES["insert_jobs"], json_param(docs))
                if int(status.rsplit(" ", 1)[-1]) != len(plan.inserts):
                    raise _InsertRace()
            if plan.attempts:
                docs = [attempt_doc(a) for a in plan.attempts]
                await conn.execute(QUERIES["upsert_attempts"], json_param(docs))
            spans = self.spans.wider([*plan.updates, *plan.inserts])
            if spans:
                docs = [span.doc(key) for key, span in spans.items()]
                widened = await conn.fetch(QUERIES["widen_spans"], json_param(docs))
            if self.on_batch is not None and (plan.updates or plan.inserts):
                await self.on_batch(conn, existing, [*plan.updates, *plan.inserts])
            logs = 0
            if plan.logs:
                docs = [log_doc(x) for x in plan.logs]
                status = await conn.execute(QUERIES["insert_logs"], json_param(docs))
                logs = int(status.rsplit(" ", 1)[-1])
        self.spans.learn(widened)  # committed: only now may they be skipped
        return WriteResult(len(plan.updates), len(plan.inserts), logs, len(plan.conflicts))


def removed_before(event: Event, removed: dict[str, int]) -> bool:
    """An event of a job deleted after it happened (delivered again): it must not bring the
    row back. A job enqueued under the same id after the removal is a new job."""
    removed_ms = removed.get(event.job_id or "")
    return removed_ms is not None and event.ts <= removed_ms


def row_from_record(r: asyncpg.Record) -> JobRow:
    return JobRow(
        id=r["id"],
        queue=r["queue"],
        name=r["name"],
        status=JobStatus(r["status"]),
        created_at=r["created_at"],
        priority=r["priority"],
        max_attempts=r["max_attempts"],
        added_attempt=r["added_attempt"],
        template_id=r["template_id"],
        schedule_id=r["schedule_id"],
        error_type=r["error_type"],
        error_message=r["error_message"],
        error_traceback=r["error_traceback"],
        progress=float(r["progress"]),
        progress_message=r["progress_message"],
        attempts=r["attempts"],
        worker=r["worker"],
        run_at=r["run_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        duration_ms=r["duration_ms"],
        cancelled_by=r["cancelled_by"],
        version=r["version"],
        version_at=_stream_id(r["version_ms"], r["version_seq"]),
    )


def _stream_id(ms: int | None, seq: int | None) -> StreamId | None:
    return None if ms is None or seq is None else (ms, seq)


def attempt_from_record(r: asyncpg.Record) -> AttemptRow:
    return AttemptRow(
        job_id=r["job_id"],
        attempt=r["attempt"],
        worker=r["worker"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        outcome=r["outcome"],
        error_type=r["error_type"],
        error_message=r["error_message"],
        error_traceback=r["error_traceback"],
        final_at=_stream_id(r["final_ms"], r["final_seq"]),
    )


def attempt_doc(a: AttemptRow) -> dict[str, Any]:
    return {
        "job_id": a.job_id,
        "attempt": a.attempt,
        "worker": a.worker,
        "started_at": a.started_at,
        "finished_at": a.finished_at,
        "outcome": a.outcome,
        "error_type": a.error_type,
        "error_message": a.error_message,
        "error_traceback": a.error_traceback,
        "final_ms": None if a.final_at is None else a.final_at[0],
        "final_seq": None if a.final_at is None else a.final_at[1],
    }


def row_doc(r: JobRow) -> dict[str, Any]:
    """One row as a JSON object for ``jsonb_to_recordset`` in ``update_jobs``/``insert_jobs``."""
    doc: dict[str, Any] = {
        "id": r.id,
        "queue": r.queue,
        "name": r.name,
        "status": r.status.value,
        "priority": r.priority,
        "max_attempts": r.max_attempts,
        "added_attempt": r.added_attempt,
        "template_id": r.template_id,
        "schedule_id": r.schedule_id,
        "created_at": r.created_at,
        "error_type": r.error_type,
        "error_message": r.error_message,
        "error_traceback": r.error_traceback,
        "progress": r.progress,
        "progress_message": r.progress_message,
        "attempts": r.attempts,
        "worker": r.worker,
        "run_at": r.run_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "duration_ms": r.duration_ms,
        "cancelled_by": r.cancelled_by,
        "version": r.version,
        "version_ms": None if r.version_at is None else r.version_at[0],
        "version_seq": None if r.version_at is None else r.version_at[1],
    }
    for key in ("data", "options", "result"):
        value = getattr(r, key)
        if value is KEEP:
            doc["keep_" + key] = True
        else:
            doc[key] = value
    if not isinstance(doc.get("options", {}), dict):
        doc["options"] = {}
    return doc


def log_doc(x: LogLine) -> dict[str, Any]:
    return {
        "job_id": x.job_id,
        "attempt": x.attempt,
        "seq": x.seq,
        "ts": x.ts,
        "level": x.level,
        "message": x.message,
    }


def json_param(docs: list[dict[str, Any]]) -> str:
    """The batch as JSON text Postgres accepts: no NaN/Infinity, no NUL characters.

    The fast path is one C-encoded ``json.dumps``; only a batch that needs it is cleaned.
    """
    try:
        text = json.dumps(docs, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = json.dumps(_jsonable(docs), ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        text = json.dumps(_jsonable(docs), ensure_ascii=False, separators=(",", ":"))
    return text


def _jsonable(value: Any) -> Any:
    """What jsonb accepts: str keys, no NaN/Infinity, no NUL characters, bytes as text."""
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").replace("\x00", "")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _key(key: Any) -> str:
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return text.replace("\x00", "")
