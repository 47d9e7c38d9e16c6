"""Keeps ``job_spans`` (migration 0020) wide enough to hold every job the recorder writes.

The API's cost guard trusts it as a bound: every job of a (queue, job name) was created
at or after its ``first_at`` and created, started and finished at or before its
``last_at`` (``jobdeck_api.search_skew``). So a batch widens the spans its rows need in
its own transaction, before it commits: a search never sees a job outside its span. Spans
are whole hours and this process remembers the spans it has seen committed, so a key is
written about once an hour, not once a batch; what it remembers can only be narrower
than the table, never wider (spans only widen), so a stale memory costs a write, never a
wrong bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from jobdeck_recorder.fold import JobRow

HOUR_MS = 3_600_000

Key = tuple[str, str]  # queue, job name
Span = tuple[int, int]  # first, last (epoch ms, whole hours)


def row_span(row: JobRow) -> Span:
    """The hours around a job: its creation hour's start, and the end of the hour of its
    latest time (the same rounding as ``widen_job_spans()``)."""
    latest = max(t for t in (row.created_at, row.started_at, row.finished_at) if t is not None)
    return row.created_at // HOUR_MS * HOUR_MS, (latest // HOUR_MS + 1) * HOUR_MS


def spans_of(rows: Iterable[JobRow]) -> dict[Key, Span]:
    spans: dict[Key, Span] = {}
    for row in rows:
        first, last = row_span(row)
        key = (row.queue, row.name)
        known = spans.get(key)
        spans[key] = (first, last) if known is None else (min(known[0], first), max(known[1], last))
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
            if (known := self._known.get(key)) is None or span[0] < known[0] or span[1] > known[1]
        }

    def learn(self, records: Sequence[asyncpg.Record]) -> None:
        """The spans as the table holds them after a committed ``widen_spans``."""
        for r in records:
            self._known[(r["queue"], r["name"])] = (r["first_ms"], r["last_ms"])
