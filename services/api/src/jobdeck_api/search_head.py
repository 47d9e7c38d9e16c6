"""The head of a page's walk, read before the page: does a page of matches lie in it?

A page walking the index of its sort column from one end reads jobs in that order until
it has a page of matches. The statistics and spans (``search_nulls``, ``search_skew``)
bound that walk from below where they can; what they cannot see — a burst of 40,000
completed jobs at the top of ``jobs_started_idx`` ahead of the first failed one, the week's
waiting jobs in the middle of a block of jobs without a start that runs in id order — the
walk's own head shows. So where they would serve such a page, the guard reads the first
``WALK_MAX_ROWS`` jobs in the page's order and counts matches, in one statement that stops
at the page's last match: a page found there is served (the page reads the same jobs); one
not found there would read more than a page may, and is refused up front. ~1 ms when the
matches are near the front, ~20-30 ms for 20,000 jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from jobdeck.jobsql import SortKey, order_by

# The index of each sort column that a page walks from one end in that column's order
# (checked against the catalog in a test): the order of ``ORDER BY column, id`` alone.
SORT_INDEXES = {
    "created_at": "jobs_created_idx",
    "started_at": "jobs_started_idx",
    "finished_at": "jobs_finished_idx",
    "duration_ms": "jobs_duration_idx",
}
# The primary key: a page sorted by a key its filters fix (one queue sorted by queue)
# walks it in the order of the id tie-break.
PRIMARY_KEY = "jobs_pkey"
# Reading the head is given up past this: a page would read those same jobs first, so it
# is refused as one that reads too many.
HEAD_TIMEOUT_MS = 50


def walk_order(sort: Sequence[SortKey], walk_index: str) -> str | None:
    """The ORDER BY that reads ``jobs`` in the order a page sorted by ``sort`` walks
    ``walk_index``, when it is the sort column's own index or the primary key."""
    if len(sort) == 1 and walk_index == SORT_INDEXES.get(sort[0][0]):
        return order_by(sort)
    if walk_index == PRIMARY_KEY:
        return f" ORDER BY id {sort[-1][1].value.upper()}"
    return None


@dataclass(frozen=True)
class WalkHead:
    """The head of a walk: the position of the page's last row in it (``found_at``); else
    whether the table ended within it (``ended``: the page reads no more) or the probe was
    given up (``timed_out``); neither: fewer than a page of its first rows match."""

    found_at: int | None
    ended: bool = False
    timed_out: bool = False

    @property
    def short(self) -> bool:
        """The page reads no more than the head."""
        return self.found_at is not None or self.ended


async def walk_head(
    conn: asyncpg.Connection, order_by: str, matches: str, args: list[object], need: int, rows: int
) -> WalkHead:
    """Walk the first ``rows`` jobs in the order ``order_by`` for the ``need``-th one
    matching ``matches`` (a condition over ``args``)."""
    n = len(args)
    sql = (
        "SELECT n, matched FROM (SELECT row_number() OVER w AS n, count(*) FILTER (WHERE m)"
        f" OVER w AS matched FROM (SELECT ({matches}) AS m FROM jobs{order_by}"
        f" LIMIT ${n + 1}) head WINDOW w AS (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))"
        f" walked WHERE matched >= ${n + 2} OR n = ${n + 1} LIMIT 1"
    )
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {HEAD_TIMEOUT_MS}")
            row = await conn.fetchrow(sql, *args, rows, need)
    except asyncpg.QueryCanceledError:
        return WalkHead(found_at=None, timed_out=True)
    if row is None:
        return WalkHead(found_at=None, ended=True)
    return WalkHead(found_at=row["n"] if row["matched"] >= need else None)
