"""The count strategy of a search: when ``total`` is exact, estimated or counted.

A search page is cheap (an index walk of ``limit`` rows); its total can cost a scan of
every match. Counting is therefore decided per request from the page itself, the
planner's estimate and a time budget, so that a total never costs more than it is worth.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from jobdeck_api.errors import BadParameter
from jobdeck_api.search import SearchPlan
from jobdeck_api.search_estimates import Estimate, Estimates, planner_estimate
from jobdeck_api.search_models import SearchQuery


class PageOverBudget(Exception):
    """The page query ran past its budget: its matches sit far apart in the sort order."""


@contextlib.asynccontextmanager
async def budgeted(conn: asyncpg.Connection, budget_ms: int) -> AsyncIterator[None]:
    """A read-only transaction whose statements Postgres cancels past ``budget_ms``
    (``QueryCanceledError``). BEGIN and SET LOCAL go as one simple query: one round trip
    fewer than asyncpg's ``transaction()`` and a separate SET."""
    await conn.execute(f"BEGIN READ ONLY; SET LOCAL statement_timeout = {int(budget_ms)}")
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


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
        async with budgeted(conn, budget_ms):
            rows = await conn.fetch(plan.sql, *plan.args)
    except asyncpg.QueryCanceledError:
        raise PageOverBudget from None
    return rows


async def execute_search(
    conn: asyncpg.Connection,
    plan: SearchPlan,
    q: SearchQuery,
    page_budget_ms: int | None = None,
    *,
    estimates: Estimates | None = None,
    page: Estimate | None = None,
) -> tuple[list[asyncpg.Record], int, bool]:
    """The page and the total. The total is skipped when the page itself tells it; when
    the planner expects far more matches than the cap, or a count costlier than the page
    is worth, its estimate is the answer (``totalExact: false``); else matches are
    counted up to the cap, exact below it, within a time budget (past it, the estimate
    again). ``exactTotal=true`` counts up to ``plan.exact_total_max`` matches, and is refused
    before anything runs when the planner expects more.

    ``estimates`` keeps the planner's answers (``search_estimates``); ``page``, the
    estimate of the page query when the caller has it: without a cursor, its matches are
    the total's estimate, so a large match needs no second ``EXPLAIN``."""

    async def estimate() -> Estimate:
        if estimates is None:
            return await planner_estimate(conn, plan.estimate_sql, plan.estimate_args)
        return await estimates.of(conn, plan.estimate_sql, plan.estimate_args)

    if q.exact_total:
        expected = await estimate()
        if expected.rows > plan.exact_total_max:
            raise refuse_exact_total(expected.rows, plan.exact_total_max)
    rows = await fetch_page(conn, plan, page_budget_ms)
    if q.cursor is None and (rows or plan.offset == 0) and len(rows) < q.limit:
        return rows, plan.offset + len(rows), True
    if q.exact_total:
        counted = int(await conn.fetchval(plan.count_sql, *plan.count_args))
        return rows, counted, counted <= plan.exact_total_max
    matches = page.matches if page is not None and q.cursor is None else None
    if matches is not None and matches > plan.estimate_trusted:
        return rows, matches, False
    expected = await estimate()
    if expected.rows > plan.estimate_trusted or expected.cost > plan.count_cost_limit:
        return rows, expected.rows, False
    total = await budgeted_count(conn, plan)
    if total is None:
        return rows, expected.rows, False  # counting would cost more than it is worth
    if total <= plan.count_cap:
        return rows, total, True
    return rows, max(total, expected.rows), False


async def budgeted_count(conn: asyncpg.Connection, plan: SearchPlan) -> int | None:
    """The capped count, or None past ``count_budget_s``. The limit is Postgres's own
    ``statement_timeout``: a client-side timeout would cancel through a new connection,
    which Postgres serves by forking a process, the opposite of saving work."""
    budget_ms = int(plan.count_budget_s * 1000)
    if budget_ms <= 0:
        return None
    try:
        async with budgeted(conn, budget_ms):
            return int(await conn.fetchval(plan.count_sql, *plan.count_args))
    except asyncpg.QueryCanceledError:
        return None
