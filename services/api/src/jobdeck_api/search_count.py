"""The count strategy of a search: when ``total`` is exact, estimated or counted.

A search page is cheap (an index walk of ``limit`` rows); its total can cost a scan of
every match. Counting is therefore decided per request from the page itself, the
planner's estimate and a time budget, so that a total never costs more than it is worth.
"""

from __future__ import annotations

import json

import asyncpg

from jobdeck_api.models import SearchQuery
from jobdeck_api.search import SearchPlan


async def execute_search(
    conn: asyncpg.Connection, plan: SearchPlan, q: SearchQuery
) -> tuple[list[asyncpg.Record], int, bool]:
    """The page and the total. The total is skipped when the page itself tells it; when
    the planner expects far more matches than the cap, or a count costlier than the page
    is worth, its estimate is the answer (``totalExact: false``); else matches are
    counted up to the cap, exact below it, within a time budget (past it, the estimate
    again). ``exactTotal=true`` always counts everything."""
    rows = await conn.fetch(plan.sql, *plan.args)
    if q.cursor is None and (rows or plan.offset == 0) and len(rows) < q.limit:
        return rows, plan.offset + len(rows), True
    if q.exact_total:
        return rows, int(await conn.fetchval(plan.count_sql, *plan.count_args)), True
    explained = await conn.fetchval(plan.estimate_sql, *plan.estimate_args)
    plan_json = json.loads(explained) if isinstance(explained, str) else explained
    estimate = int(plan_json[0]["Plan"]["Plan Rows"])
    cost = float(plan_json[0]["Plan"]["Total Cost"])
    if estimate > plan.estimate_trusted or cost > plan.count_cost_limit:
        return rows, estimate, False
    total = await budgeted_count(conn, plan)
    if total is None:
        return rows, estimate, False  # counting would cost more than it is worth
    if total <= plan.count_cap:
        return rows, total, True
    return rows, max(total, estimate), False


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
