"""Which searches are served, which wait for the heavy lane, and which are refused up front.

Every combination of the documented filters and sort fields is either served from an
index (its first page reads about ``limit`` rows) or needs to read and sort many matches
to find one page — a small queue sorted by attempts, a common substring sorted by
duration. Which one a request is depends on the data, so the planner is asked
(``EXPLAIN``, nothing runs): a page it prices above ``refuse_cost`` is refused with a 422
that says what to ask instead; above ``heavy_cost`` it runs in the heavy lane
(``limits.HeavyLane``). The planner prices a LIMIT query as if the matches were spread
evenly along the index it walks, so a page it misjudged is also cancelled past
``page_budget_ms`` and refused the same way. The simplest shape (one queue, one status, by
creation time, shallow) is an index range read whatever the data and skips both.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from jobdeck.filters import SortField
from jobdeck.web import PG

from jobdeck_api.errors import BadParameter
from jobdeck_api.limits import HEAVY_LANE, LIMITS, CostLimits
from jobdeck_api.search import SearchPlan
from jobdeck_api.search_count import Estimate, PageOverBudget, execute_search, planner_estimate
from jobdeck_api.search_models import SearchQuery


@dataclass(frozen=True)
class Verdict:
    heavy: bool
    refusal: BadParameter | None = None


def judge(q: SearchQuery, page: Estimate | None, limits: CostLimits) -> Verdict:
    """Serve, serve in the heavy lane, or refuse (with the advice that fits ``q``)."""
    if page is None:
        return Verdict(heavy=q.exact_total)
    if page.cost > limits.refuse_cost:
        return Verdict(heavy=True, refusal=refusal(q, page, limits))
    return Verdict(heavy=q.exact_total or page.cost > limits.heavy_cost)


def refusal(q: SearchQuery, page: Estimate, limits: CostLimits) -> BadParameter:
    """A 422 naming the parameter most likely at fault and every cheaper way to ask."""
    return _refused(
        q,
        f"this search would have to read and sort many of its ~{page.rows:,} matches to return"
        f" one page (planner cost {page.cost:,.0f}, above the {limits.refuse_cost:,.0f} served)",
    )


def over_budget(q: SearchQuery, limits: CostLimits) -> BadParameter:
    return _refused(
        q,
        f"this search's first page was not found within {limits.page_budget_ms} ms: its"
        " matches lie far apart in this sort order (say, failed jobs sorted by a time most"
        " other jobs lack)",
    )


def _refused(q: SearchQuery, why: str) -> BadParameter:
    sorted_by = [f for f, _ in q.sort_keys()]
    advice = []
    name = "filters"
    if sorted_by != [SortField.CREATED_AT]:
        name = "sortBy"
        advice.append("sort by createdAt, which every filter's index serves in order")
    advice.append("narrow it with queues, status or a startDate/endDate range")
    if q.search:
        name = "search" if name == "filters" else name
        advice.append("use a longer, more specific search term")
    if q.offset or (q.page or 1) > 1:
        advice.append("page with nextCursor instead of page/offset")
    return BadParameter(
        f"{name}: {why}; instead " + "; or ".join(advice),
        [{"in": "query", "name": name, "reason": "too costly to serve; see detail"}],
    )


async def guarded_search(
    app: web.Application, plan: SearchPlan, q: SearchQuery
) -> tuple[list[asyncpg.Record], int, bool]:
    """The page and total of ``plan``, priced first unless its shape is always cheap."""
    pool = app[PG]
    page = None
    if not plan.simple:
        async with pool.acquire() as conn:
            page = await planner_estimate(conn, plan.sql, plan.args)
    verdict = judge(q, page, app[LIMITS])
    if verdict.refusal is not None:
        raise verdict.refusal
    # The lane is entered before a connection is taken: a request waiting for a slot
    # holds nothing the cheap requests need.
    limits = app[LIMITS]
    lane = app[HEAVY_LANE].enter() if verdict.heavy else contextlib.nullcontext()
    budget = None if plan.simple else limits.page_budget_ms
    try:
        async with lane, pool.acquire() as conn:
            return await execute_search(conn, plan, q, budget)
    except PageOverBudget:
        raise over_budget(q, limits) from None
