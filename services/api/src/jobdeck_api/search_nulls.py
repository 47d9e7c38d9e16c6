"""Where the jobs lacking a sort value lie, and how far a page walks before its matches.

A sort on startedAt, finishedAt or duration puts the jobs lacking that value in one
block of its index: first when ascending, last when descending (NULL is the lowest
value). Whether a job lacks it depends on its status: a failed job has a finish time, a
waiting one none. The planner takes status and NULL as independent, so it prices
"failed jobs by finishedAt ascending" as if failed jobs were spread through the leading
block of unfinished ones, when in truth the page walks the whole block before its first
match. Postgres's joint statistics of status and those NULLs (``jobs_status_nulls``,
migration 0017) give the real share of each status in each block; pure functions here,
loaded by ``search_estimates``. What they cannot show is a queue with no unfinished job
(a queue retired, or drained): finishedAt ascending walks the whole block of unfinished
jobs before its first match, the statistics say its share of them is the average. A job
lacks a finish time exactly while it is unfinished (the recorder sets one on every final
status), so one probe of ``jobs_live_queue_idx`` (``all_finished``) tells.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

# The nullable sort columns, in the order of their expressions in ``jobs_status_nulls``.
NULLABLE_COLUMNS = ("started_at", "finished_at", "duration_ms")


@dataclass(frozen=True)
class NullStats:
    """``rows`` in ``jobs``; ``shares[(status, column, lacks)]``: the share of all jobs
    with that status that lack (or have) a value in that column."""

    rows: float
    shares: Mapping[tuple[str, str, bool], float]

    @classmethod
    def from_mcv(cls, rows: float, values: list[list[str]], freqs: list[float]) -> NullStats:
        """From the MCV list of ``jobs_status_nulls``: rows of (status, 't'/'f' per column)."""
        shares: dict[tuple[str, str, bool], float] = {}
        for combo, freq in zip(values, freqs, strict=True):
            status, *lacks = combo
            for column, flag in zip(NULLABLE_COLUMNS, lacks, strict=True):
                key = (status, column, flag == "t")
                shares[key] = shares.get(key, 0.0) + freq
        return cls(rows=rows, shares=shares)

    def share(self, column: str, lacks: bool | None, statuses: frozenset[str] | None) -> float:
        return sum(
            v
            for (s, c, n), v in self.shares.items()
            if c == column and (lacks is None or n == lacks) and (statuses is None or s in statuses)
        )


@dataclass(frozen=True)
class LeadingBlock:
    """The block of ``column`` a page walks first: ``lacks`` (NULLs, ascending) or not."""

    column: str
    lacks: bool
    rows: float  # jobs in the block
    walk: float  # rows the page is expected to read in it


def leading_walk(
    stats: NullStats,
    column: str,
    ascending: bool,
    statuses: frozenset[str] | None,
    matches: float,
    need: int,
    none_lack: bool = False,
) -> LeadingBlock | None:
    """The rows a page of ``need`` rows walks through the leading block of ``column``'s
    index, given the planner's estimate of all ``matches``; None without statistics.

    Filters other than status are taken as spread evenly (their share of the status'
    jobs is ``matches`` over those jobs); status is weighted by its share of the block.
    ``none_lack``: no match lacks the value, so an ascending page walks the whole block."""
    lacks = ascending
    block = stats.share(column, lacks, None)
    status_share = stats.share(column, None, statuses)
    if block <= 0 or status_share <= 0 or stats.rows <= 0:
        return None
    if none_lack and lacks:
        return LeadingBlock(
            column=column, lacks=True, rows=block * stats.rows, walk=block * stats.rows
        )
    others = min(1.0, matches / (stats.rows * status_share))
    density = stats.share(column, lacks, statuses) / block * others
    block_rows = block * stats.rows
    walk = block_rows if density <= 0 else min(block_rows, need / density)
    return LeadingBlock(column=column, lacks=lacks, rows=block_rows, walk=walk)


# jobs_live_queue_idx: its predicate's statuses, the unfinished ones.
ANY_UNFINISHED_SQL = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ANY($1::text[])
               AND status IN ('waiting', 'delayed', 'active'))
"""


async def all_finished(conn: asyncpg.Connection, queues: tuple[str, ...]) -> bool:
    """Whether every job of ``queues`` has a finish time (none is unfinished); ~0.1 ms."""
    return not await conn.fetchval(ANY_UNFINISHED_SQL, list(queues))
