"""Where the jobs lacking a sort value lie, and how far a page walks before its matches.

A sort on startedAt, finishedAt or duration puts the jobs lacking that value in one
block of its index: first when ascending, last when descending (NULL is the lowest
value). Whether a job lacks it depends on its status: a failed job has a finish time, a
waiting one none. The planner takes status and NULL as independent, so it prices
"failed jobs by finishedAt ascending" as if failed jobs were spread through the leading
block of unfinished ones, when in truth the page walks the whole block before its first
match. Postgres's joint statistics of status and those NULLs (``jobs_status_nulls``,
migration 0017) give the real share of each status in each block; pure functions here,
loaded by ``search_estimates``. What they cannot show is queues or names none of whose
jobs lacks the value (a queue retired or drained, sorted by finishedAt ascending): the page
walks the whole block before its first match, the statistics say their share of it is the
average. Which jobs lack a value is known: a finish time, the unfinished ones (the recorder
sets one on every final status); a start time, the waiting and delayed ones and those that
ended before they started (``job_spans`` says whether any did); a duration, both. So one
probe of ``jobs_live_queue_idx`` tells (``none_lack``). What neither shows (the jobs of a
week last month lacking a start time in the middle of a block that runs in id order) the
head of the walk itself does (``search_head``).
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


# The unfinished statuses that lack each value (literals, so that the probe's predicate
# implies jobs_live_queue_idx's); and whether a job ended without a start lacks it.
LACKING_WHILE_UNFINISHED = {
    "finished_at": ("('waiting', 'delayed', 'active')", False),
    "started_at": ("('waiting', 'delayed')", True),
    "duration_ms": ("('waiting', 'delayed', 'active')", True),
}
# A probe taking longer (a name over queues with a huge backlog) is given up: not known.
PROBE_TIMEOUT_MS = 20


async def none_lack(
    conn: asyncpg.Connection,
    column: str,
    queues: tuple[str, ...],
    name_like: str | None,
    ended_unstarted: bool,
) -> bool:
    """Whether no job of ``queues`` (with a name ``LIKE name_like``) lacks ``column``'s value;
    False when not known. ~0.1 ms for queues with a backlog of a few thousand."""
    statuses, unstarted_lack = LACKING_WHILE_UNFINISHED[column]
    if unstarted_lack and ended_unstarted:
        return False
    # OFFSET 0 keeps the name out of the scan: the trigram index would read every job of
    # the name rather than the queues' few unfinished ones.
    sql = (
        "SELECT NOT EXISTS (SELECT 1 FROM (SELECT name FROM jobs WHERE queue = ANY($1::text[])"
        f" AND status IN {statuses} OFFSET 0) live WHERE $2::text IS NULL OR name ILIKE $2)"
    )
    try:
        async with conn.transaction():  # Postgres gives it up, so no client-side cancel races
            # A generic plan (Postgres's choice from a statement's 6th run on) does not see
            # the few unfinished jobs of these queues and reads many more.
            await conn.execute(
                f"SET LOCAL statement_timeout = {PROBE_TIMEOUT_MS};"
                " SET LOCAL plan_cache_mode = force_custom_plan"
            )
            return bool(await conn.fetchval(sql, list(queues), name_like))
    except asyncpg.QueryCanceledError:
        return False
