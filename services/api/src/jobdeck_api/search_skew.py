"""How far along a time index a page walks before the first job of its queues.

A queue created last week, sorted by finishedAt ascending over a year of history: the
page walks the finish-time index from its oldest end and reads every older job of the
other queues before its first match. The planner takes queue and time as independent
and prices that walk as short; neither it nor the joint statistics of ``search_nulls``
see it. One index probe per queue (``jobs_queue_created_idx``) gives the queues' first
and last creation time, and the sort column's histogram (``pg_stats``) the rows on the
other side of it. No job starts or finishes before it was created, so the rows of
startedAt/finishedAt before the queues' first creation time are a lower bound of the
walk, as are the rows of createdAt outside the queues' span: a page refused by this rule
would read at least that many rows. Pure functions here, loaded by ``search_estimates``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# The time sort columns this bound holds for: ascending, all of them; descending,
# creation time only (a job's start or finish may come any time after its creation).
ASCENDING_COLUMNS = ("created_at", "started_at", "finished_at")
DESCENDING_COLUMNS = ("created_at",)


@dataclass(frozen=True)
class QueueSpan:
    """The first and last creation time of some queues' jobs, and the histogram of a
    time column: ``below``/``above`` of its ``bounds`` bounds lie before/after them."""

    first: datetime
    last: datetime
    rows: float  # jobs in the table
    null_frac: float  # share lacking the column's value
    bounds: int
    below: int
    above: int


@dataclass(frozen=True)
class SkewedStart:
    """A page that reads at least ``walk`` rows of other queues before its first match."""

    column: str
    ascending: bool
    edge: datetime  # the queues' first (ascending) or last (descending) creation time
    walk: float


def bounded(column: str, ascending: bool) -> bool:
    """Whether the queues' creation span bounds the walk of ``column`` in that order."""
    return column in (ASCENDING_COLUMNS if ascending else DESCENDING_COLUMNS)


def skewed_start(column: str, ascending: bool, span: QueueSpan | None) -> SkewedStart | None:
    """At least how many rows the index on ``column`` holds before the queues' jobs.

    A histogram bound inside the span may have up to one bucket of the queues' side
    beside it: that bucket is left out, so the figure stays a lower bound."""
    if span is None or span.bounds < 2 or span.rows <= 0 or not bounded(column, ascending):
        return None
    outside = span.below if ascending else span.above
    share = max(0, outside - 1) / (span.bounds - 1)
    walk = span.rows * (1 - span.null_frac) * share
    edge = span.first if ascending else span.last
    return SkewedStart(column=column, ascending=ascending, edge=edge, walk=walk)


SPAN_SQL = """
WITH span AS (
    SELECT min(b.first) AS first, max(b.last) AS last
    FROM unnest($1::text[]) AS q(queue),
    LATERAL (SELECT min(j.created_at) AS first, max(j.created_at) AS last
             FROM jobs j WHERE j.queue = q.queue) b
), hist AS (
    SELECT s.null_frac, s.histogram_bounds::text::timestamptz[] AS bounds
    FROM pg_stats s
    WHERE s.schemaname = current_schema() AND s.tablename = 'jobs' AND s.attname = $2
)
SELECT span.first, span.last, c.reltuples, h.null_frac, cardinality(h.bounds) AS bounds,
       (SELECT count(*) FROM unnest(h.bounds) b WHERE b < span.first) AS below,
       (SELECT count(*) FROM unnest(h.bounds) b WHERE b > span.last) AS above
FROM span CROSS JOIN pg_class c JOIN hist h ON true
WHERE c.oid = 'jobs'::regclass
"""


async def read_span(
    conn: asyncpg.Connection, queues: tuple[str, ...], column: str
) -> QueueSpan | None:
    """None when the queues have no jobs or ANALYZE has not run; ~1 ms at 10 M rows."""
    row = await conn.fetchrow(SPAN_SQL, list(queues), column)
    if row is None or row["first"] is None or row["bounds"] is None:
        return None
    return QueueSpan(
        first=row["first"],
        last=row["last"],
        rows=float(row["reltuples"]),
        null_frac=float(row["null_frac"]),
        bounds=int(row["bounds"]),
        below=int(row["below"]),
        above=int(row["above"]),
    )
