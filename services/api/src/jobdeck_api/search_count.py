"""The count strategy of a search: when ``total`` is exact, estimated or counted.

A search page is cheap (an index walk of ``limit`` rows); its total can cost a scan of
every match. Counting is therefore decided per request from the page itself, the
planner's estimate and a time budget, so that a total never costs more than it is worth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from jobdeck_api.errors import BadParameter
from jobdeck_api.search import SearchPlan
from jobdeck_api.search_models import SearchQuery


class PageOverBudget(Exception):
    """The page query ran past its budget: its matches sit far apart in the sort order."""


@dataclass(frozen=True)
class Estimate:
    """The planner's view of a statement: rows it returns and its cost (planner units)."""

    rows: int
    cost: float


async def planner_estimate(conn: asyncpg.Connection, sql: str, args: Sequence[Any]) -> Estimate:
    """``EXPLAIN`` (no ANALYZE: nothing runs) of ``sql``; a fraction of a millisecond."""
    explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    root = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    return Estimate(rows=int(root["Plan Rows"]), cost=float(root["Total Cost"]))


def refuse_exact_total(estimate: int, most: int) -> BadParameter:
    return BadParameter(
        f"exactTotal: about {estimate:,} jobs match, more than the {most:,} that"
        " are counted exactly; narrow the filters (queues, status, a startDate/endDate range)"
        " or drop exactTotal to get an estimate (totalExact: false)",
        [{"in": "query", "name": "exactTotal", "reason": "too many matches to count exactly"}],
    )


async def fetch_page(
    conn: asyncpg.Connection, plan: SearchPlan, budget_ms: int | None
) -> list[asyncpg.Record]:
    """The page's rows; with a budget, Postgres cancels the page past it (``PageOverBudget``).

    The planner prices a LIMIT query as if matches were spread evenly along the index it
    walks; when they are not (failed jobs sorted by start time ascending sit behind a
    million not-started ones), a query it priced at nothing reads millions of rows. The
    budget bounds what such a misjudged page can cost."""
    rows: list[asyncpg.Record]
    if not budget_ms:
        rows = await conn.fetch(plan.sql, *plan.args)
        return rows
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = {int(budget_ms)}")
            rows = await conn.fetch(plan.sql, *plan.args)
    except asyncpg.QueryCanceledError:
        raise PageOverBudget from None
    return rows


async def execute_search(
    conn: asyncpg.Connection, plan: SearchPlan, q: SearchQuery, page_budget_ms: int | None = None
) -> tuple[list[asyncpg.Record], int, bool]:
    """The page and the total. The total is skipped when the page itself tells it; when
    the planner expects far more matches than the cap, or a count costlier than the page
    is worth, its estimate is the answer (``totalExact: false``); else matches are
    counted up to the cap, exact below it, within a time budget (past it, the estimate
    again). ``exactTotal=true`` counts up to ``plan.exact_total_max`` matches, and is refused
    before anything runs when the planner expects more."""
    if q.exact_total:
        expected = await planner_estimate(conn, plan.estimate_sql, plan.estimate_args)
        if expected.rows > plan.exact_total_max:
            raise refuse_exact_total(expected.rows, plan.exact_total_max)
    rows = await fetch_page(conn, plan, page_budget_ms)
    if q.cursor is None and (rows or plan.offset == 0) and len(rows) < q.limit:
        return rows, plan.offset + len(rows), True
    if q.exact_total:
        counted = int(await conn.fetchval(plan.count_sql, *plan.count_args))
        return rows, counted, counted <= plan.exact_total_max
    estimate = await planner_estimate(conn, plan.estimate_sql, plan.estimate_args)
    if estimate.rows > plan.estimate_trusted or estimate.cost > plan.count_cost_limit:
        return rows, estimate.rows, False
    total = await budgeted_count(conn, plan)
    if total is None:
        return rows, estimate.rows, False  # counting would cost more than it is worth
    if total <= plan.count_cap:
        return rows, total, True
    return rows, max(total, estimate.rows), False


async def budgeted_count(conn: asyncpg.Connection, plan: SearchPlan) -> int | None:
    """The capped count, or None past ``count_budget_s``. The limit is Postgres's own
    ``statement_timeout``: a client-side timeout would cancel through a new connection,
    which Postgres serves by forking a process, the opposite of saving work."""
    budget_ms = int(plan.count_budget_s * 1000)
    if budget_ms <= 0:
        return None
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = {budget_ms}")
            return int(await conn.fetchval(plan.count_sql, *plan.count_args))
    except asyncpg.QueryCanceledError:
        return None
