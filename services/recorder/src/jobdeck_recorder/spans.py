"""Keeps ``job_spans`` (migration 0020) wide enough to hold every job the recorder writes.

The API's cost guard trusts it as a bound: every job of a (queue, job name) was created
at or after its ``first_at``, created, started and finished at or before its ``last_at``,
and ran at least ``min_duration`` and less than ``max_duration`` ms; no two of its times
lie ``max_lag_ms`` or more apart (migration 0021); and none ended without a start while
``ended_unstarted`` is false (``jobdeck_api.search_skew``). So a
batch widens the spans its rows need in its own transaction, before it commits: a search
never sees a job outside its span. Times are whole hours and durations and lags powers of two,
and this process remembers the spans it has seen committed, so a key is written about
once an hour, not once a batch; what it remembers can only be narrower than the table,
never wider (spans only widen), so a stale memory costs a write, never a wrong bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup import FINAL

HOUR_MS = 3_600_000

Key = tuple[str, str]  # queue, job name


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True, slots=True)
class Span:
    first_ms: int
    last_ms: int
    min_duration: int | None = None
    max_duration: int | None = None
    ended_unstarted: bool = False
    max_lag_ms: int | None = None

    def __or__(self, other: Span) -> Span:
        return Span(
            min(self.first_ms, other.first_ms),
            max(self.last_ms, other.last_ms),
            _least(self.min_duration, other.min_duration),
            _greatest(self.max_duration, other.max_duration),
            self.ended_unstarted or other.ended_unstarted,
            _greatest(self.max_lag_ms, other.max_lag_ms),
        )

    def holds(self, other: Span) -> bool:
        return self | other == self

    def doc(self, key: Key) -> dict[str, Any]:
        return {"queue": key[0], "name": key[1], "first_ms": self.first_ms,
                "last_ms": self.last_ms, "min_duration": self.min_duration,
                "max_duration": self.max_duration,
                "ended_unstarted": self.ended_unstarted,
                "max_lag_ms": self.max_lag_ms}  # fmt: skip


def row_span(row: JobRow) -> Span:
    """The hours around a job (its creation hour's start, the end of the hour of its latest
    time), the powers of two around its duration and above the gap between its earliest and
    latest time, rounded as ``widen_job_spans()``, and whether it ended without a start."""
    times = [t for t in (row.created_at, row.started_at, row.finished_at) if t is not None]
    first, last = row.created_at // HOUR_MS * HOUR_MS, (max(times) // HOUR_MS + 1) * HOUR_MS
    unstarted = row.status in FINAL and row.started_at is None
    lag = 1 << (max(times) - min(times)).bit_length()
    d = row.duration_ms
    if d is None:
        return Span(first, last, ended_unstarted=unstarted, max_lag_ms=lag)
    low, high = 0 if d < 1 else 1 << (d.bit_length() - 1), 1 << max(d, 0).bit_length()
    return Span(first, last, low, high, unstarted, lag)


def spans_of(rows: Iterable[JobRow]) -> dict[Key, Span]:
    spans: dict[Key, Span] = {}
    for row in rows:
        key, span = (row.queue, row.name), row_span(row)
        known = spans.get(key)
        spans[key] = span if known is None else known | span
    return spans


class SpanMemory:
    """The spans this process saw committed, to skip writing spans that already hold."""

    def __init__(self) -> None:
        self._known: dict[Key, Span] = {}

    def wider(self, rows: Iterable[JobRow]) -> dict[Key, Span]:
        """The spans ``rows`` need that are not known to be in the table already."""
        return {
            key: span
            for key, span in spans_of(rows).items()
            if (known := self._known.get(key)) is None or not known.holds(span)
        }

    def learn(self, records: Sequence[asyncpg.Record]) -> None:
        """The spans as the table holds them after a committed ``widen_spans``."""
        for r in records:
            self._known[(r["queue"], r["name"])] = Span(
                r["first_ms"],
                r["last_ms"],
                r["min_duration"],
                r["max_duration"],
                r["ended_unstarted"],
                r["max_lag_ms"],
            )
