"""How far along a time or duration index a page walks before the first job it allows.

A queue created last week, sorted by finishedAt ascending over a year of history; a job
name retired last year, sorted by startedAt descending; a 10 ms task sorted by duration
descending: the page walks the index from one end and reads every job of the other
queues or names before its first match. The planner takes queue, name, time and duration
as independent and prices that walk as short; neither it nor the joint statistics of
``search_nulls`` see it. ``job_spans`` (migration 0020, kept by the recorder) holds, per
queue and job name, an hour at or before its jobs' first creation and one at or after
their last creation, start or finish, and a duration at or below their shortest and one
above their longest; the sort column's histogram (``pg_stats``) gives the rows outside
that span. No job starts or finishes before it was created, so the rows before the span
are a lower bound of an ascending walk, and the rows after it of a descending one: a page
refused by this rule would read at least that many rows.

A range of one time narrows the span along another: no two times of a job lie
``max_lag_ms`` or more apart (migration 0021), so jobs created last week started and
finished within last week widened by that lag, and a page sorted by startedAt descending
walks every job that started after it first. Pure functions here but ``read_span``,
loaded by ``search_estimates``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

# The sort columns whose walk the spans bound, in both orders.
SPAN_COLUMNS = ("created_at", "started_at", "finished_at", "duration_ms")
# The indexes of ``jobs`` whose first column is the queue: a page walking one of them
# reads only its queues' jobs (checked against the catalog in a test).
QUEUE_LEADING_INDEXES = frozenset(
    {
        "jobs_queue_created_idx",
        "jobs_queue_status_created_idx",
        "jobs_live_queue_idx",
        "jobs_retention_idx",
    }
)


@dataclass(frozen=True)
class Restriction:
    """What a search limits its jobs to, as far as ``job_spans`` knows them: queues, a
    LIKE pattern of job names, a job id it matches whatever its name, and a range of one
    time column (epoch seconds, either end open)."""

    queues: tuple[str, ...] | None = None
    name_like: str | None = None
    job_id: str | None = None
    date_column: str | None = None
    after: float | None = None
    before: float | None = None

    def __bool__(self) -> bool:
        return self.queues is not None or self.name_like is not None or self.date_column is not None


@dataclass(frozen=True)
class Span:
    """Where the restricted jobs lie along a column (epoch seconds, or milliseconds of
    duration), and its histogram: ``below``/``above`` of its ``bounds`` bounds lie
    before/after them."""

    lo: float
    hi: float
    queues: tuple[str, ...]  # the queues holding such jobs
    ended_unstarted: bool  # whether one of them ended without a start time
    rows: float  # jobs in the table
    null_frac: float  # share lacking the column's value
    bounds: int
    below: int
    above: int
    # Whether the range of another time column narrowed ``lo`` / ``hi``.
    dated_lo: bool = False
    dated_hi: bool = False


@dataclass(frozen=True)
class SkewedStart:
    """A page that reads at least ``walk`` rows of other jobs before its first match."""

    column: str
    ascending: bool
    edge: float  # the span's low (ascending) or high (descending) end
    walk: float
    dated: bool = False  # the edge comes from the range of another time column

    def edge_text(self) -> str:
        """The edge as a value of the column's filter: ISO 8601, or milliseconds."""
        if self.column == "duration_ms":
            return f"{self.edge:.0f}"
        return datetime.fromtimestamp(self.edge, UTC).isoformat()


def skewed_start(column: str, ascending: bool, span: Span | None) -> SkewedStart | None:
    """At least how many rows the index on ``column`` holds before the restricted jobs.

    A histogram bound inside the span may have up to one bucket of the span's side beside
    it: that bucket is left out, so the figure stays a lower bound."""
    if span is None or span.bounds < 2 or span.rows <= 0 or column not in SPAN_COLUMNS:
        return None
    outside = span.below if ascending else span.above
    share = max(0, outside - 1) / (span.bounds - 1)
    walk = span.rows * (1 - span.null_frac) * share
    edge = span.lo if ascending else span.hi
    dated = span.dated_lo if ascending else span.dated_hi
    return SkewedStart(column, ascending, edge, walk, dated)


# The most any two times of one job of the spans aggregated lie apart (``max_lag_ms``,
# migration 0021); NULL when one of them does not know it yet.
SPANS_LAG_MS = "CASE WHEN bool_or(max_lag_ms IS NULL) THEN NULL ELSE max(max_lag_ms) END"

SPAN_SQL = f"""
WITH span AS (
    SELECT min(m.first_at) AS first, max(m.last_at) AS last,
           min(m.min_duration) AS shortest, max(m.max_duration) AS longest,
           array_agg(DISTINCT m.queue) AS queues, bool_or(m.ended_unstarted) AS ended_unstarted,
           {SPANS_LAG_MS} / 1000.0 AS lag
    FROM (
        SELECT s.queue, s.first_at, s.last_at, s.min_duration, s.max_duration,
               s.ended_unstarted, s.max_lag_ms
        FROM job_spans s
        WHERE ($1::text[] IS NULL OR s.queue = ANY($1::text[]))
          AND ($2::text IS NULL OR s.name ILIKE $2::text)
        UNION ALL
        SELECT j.queue, j.created_at, greatest(j.created_at, j.started_at, j.finished_at),
               j.duration_ms, j.duration_ms + 1, j.started_at IS NULL,
               (extract(epoch FROM greatest(j.created_at, j.started_at, j.finished_at)
                    - least(j.created_at, j.started_at, j.finished_at)) * 1000)::bigint + 1
        FROM jobs j WHERE j.id = $3::text
    ) m
), dates AS (
    -- The range of another time column, widened by the lag: where the jobs lie along $4.
    SELECT $6::float8 - lag AS lo, $7::float8 + lag AS hi
    FROM span WHERE $4 <> 'duration_ms' AND $5::text IS NOT NULL AND $5::text <> $4
), edges AS (
    SELECT CASE WHEN $4 = 'duration_ms' THEN shortest
                ELSE greatest(extract(epoch FROM first), d.lo) END::float8 AS lo,
           CASE WHEN $4 = 'duration_ms' THEN longest
                ELSE least(extract(epoch FROM last), d.hi) END::float8 AS hi,
           queues, ended_unstarted,
           coalesce(d.lo > extract(epoch FROM first), false) AS dated_lo,
           coalesce(d.hi < extract(epoch FROM last), false) AS dated_hi
    FROM span LEFT JOIN dates d ON true
), hist AS (
    SELECT s.null_frac,
           ARRAY(SELECT CASE WHEN $4 = 'duration_ms' THEN b::float8
                             ELSE extract(epoch FROM b::timestamptz)::float8 END
                 FROM unnest(s.histogram_bounds::text::text[]) b) AS bounds
    FROM pg_stats s
    WHERE s.schemaname = current_schema() AND s.tablename = 'jobs' AND s.attname = $4
)
SELECT e.lo, e.hi, e.queues, e.ended_unstarted, e.dated_lo, e.dated_hi, c.reltuples, h.null_frac,
       cardinality(h.bounds) AS bounds,
       (SELECT count(*) FROM unnest(h.bounds) b WHERE b < e.lo) AS below,
       (SELECT count(*) FROM unnest(h.bounds) b WHERE b > e.hi) AS above
FROM edges e CROSS JOIN pg_class c JOIN hist h ON true
WHERE c.oid = 'jobs'::regclass
"""


async def read_span(conn: asyncpg.Connection, restriction: Restriction, column: str) -> Span | None:
    """None when no span holds such jobs or ANALYZE has not run; ~1 ms."""
    r = restriction
    queues = None if r.queues is None else list(r.queues)
    row = await conn.fetchrow(
        SPAN_SQL, queues, r.name_like, r.job_id, column, r.date_column, r.after, r.before
    )
    if row is None or row["lo"] is None or row["hi"] is None or row["bounds"] is None:
        return None
    return Span(
        lo=row["lo"],
        hi=row["hi"],
        queues=tuple(row["queues"]),
        ended_unstarted=row["ended_unstarted"],
        rows=float(row["reltuples"]),
        null_frac=float(row["null_frac"]),
        bounds=int(row["bounds"]),
        below=int(row["below"]),
        above=int(row["above"]),
        dated_lo=row["dated_lo"],
        dated_hi=row["dated_hi"],
    )
