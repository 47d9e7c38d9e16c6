"""Which searches are served, which wait for the heavy lane, and which are refused up front.

Every combination of the documented filters and sort fields is either served from an
index (its first page reads about ``limit`` rows) or needs to read and sort many matches
to find one page — a small queue sorted by attempts, a common substring sorted by
duration. Which one a request is depends on the data, so the planner is asked
(``EXPLAIN``, nothing runs; kept a minute per statement by ``search_estimates``): a page
it prices above ``refuse_cost`` is refused with a 422 that says what to ask instead;
above ``heavy_cost`` it runs in the heavy lane (``limits.HeavyLane``). The planner prices
a LIMIT query as if the matches were spread evenly along the index it walks; where
status decides that they are not — failed jobs sorted by start time ascending sit behind
every job that never started — the joint statistics of status and missing values
(``search_nulls``) show it, and a page that would walk more than ``walk_max_rows`` of
such a block is refused up front too. Where the queues or job name searched decide it —
a queue created last week sorted by finishedAt ascending sits behind the whole history,
a name retired last year sorted by startedAt descending in front of it, jobs created in
one week of last month sorted by startedAt descending behind every job started since —
the span of their jobs in time (``search_skew``) shows it, and a page that would walk
more than ``walk_max_rows`` before it is refused up front. A walk of the sort column's
own index that all of these would serve is read first, up to ``walk_max_rows`` jobs
(``search_head``): served if a page of matches lies there, refused up front if not — a
burst of other jobs at the index's end, the matches deep in a block in id order. Whatever
else the planner misjudged is cancelled past ``page_budget_ms`` and refused the same way.
The simplest shape (one queue, one status, by creation time, shallow) skips the verdict:
an index leading with the queue or status returns it in order; it keeps the budget.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from jobdeck.filters import SortField, SortOrder
from jobdeck.jobsql import DATE_COLUMNS, SORT_COLUMNS
from jobdeck.web import PG

from jobdeck_api.errors import BadParameter
from jobdeck_api.limits import HEAVY_LANE, LIMITS, CostLimits
from jobdeck_api.search import SearchPlan
from jobdeck_api.search_count import PageOverBudget, execute_search
from jobdeck_api.search_estimates import ESTIMATES, Estimate, Estimates
from jobdeck_api.search_head import HEAD_TIMEOUT_MS, WalkHead, walk_order
from jobdeck_api.search_models import SearchQuery
from jobdeck_api.search_nulls import (
    LACKING_WHILE_UNFINISHED,
    LeadingBlock,
    NullStats,
    leading_walk,
    none_lack,
)
from jobdeck_api.search_skew import (
    QUEUE_LEADING_INDEXES,
    SPAN_COLUMNS,
    SkewedStart,
    Span,
    skewed_start,
)


@dataclass(frozen=True)
class Verdict:
    heavy: bool
    refusal: BadParameter | None = None


def judge(
    q: SearchQuery,
    page: Estimate | None,
    limits: CostLimits,
    offset: int = 0,
    nulls: NullStats | None = None,
    span: Span | None = None,
    complete: bool = False,
    head: WalkHead | None = None,
) -> Verdict:
    """Serve, serve in the heavy lane, or refuse (with the advice that fits ``q``).
    ``complete``: no job of the queues or names searched lacks the first sort key's value;
    ``head``: what the head of the page's walk holds, when read (``search_head``)."""
    if page is None:
        return Verdict(heavy=q.exact_total)
    if page.cost > limits.refuse_cost:
        return Verdict(heavy=True, refusal=refusal(q, page, limits))
    block = walked_block(q, page, offset, nulls, complete)
    if block is not None and block.walk > limits.walk_max_rows:
        return Verdict(heavy=True, refusal=walk_refusal(q, block, limits))
    if head is not None and not head.short:
        return Verdict(heavy=True, refusal=head_refusal(q, head, limits))
    # The head read shows what the spans bound from below.
    start = None if head is not None else skewed_walk(q, page, span, complete)
    if start is not None and start.walk > limits.walk_max_rows:
        return Verdict(heavy=True, refusal=skew_refusal(q, start, limits))
    return Verdict(heavy=q.exact_total or page.cost > limits.heavy_cost)


def walked_block(
    q: SearchQuery, page: Estimate, offset: int, nulls: NullStats | None, complete: bool = False
) -> LeadingBlock | None:
    """The block of jobs lacking (or having) the first sort key's value that the page
    walks first, when it walks the sort index at all and nothing skips that block."""
    field, order = q.sort_keys()[0]
    column, nullable, _ = SORT_COLUMNS[field]
    if nulls is None or not page.walks or page.matches is None or not nullable or q.cursor:
        return None
    if ranged(q, column):
        return None  # a range on the column itself leaves out the jobs lacking it
    statuses = frozenset(s.value for s in q.status) if q.status else None
    ascending = order is SortOrder.ASC
    need = offset + q.limit
    return leading_walk(nulls, column, ascending, statuses, page.matches, need, complete)


def walked_column(q: SearchQuery, page: Estimate) -> tuple[str, bool] | None:
    """The first sort key's column and direction when the page walks an index in that
    order from its end (no cursor, no range on the column) that does not lead with the
    queue."""
    field, order = q.sort_keys()[0]
    column = SORT_COLUMNS[field][0]
    if not page.walks or page.walk_index in QUEUE_LEADING_INDEXES or q.cursor or ranged(q, column):
        return None
    return column, order is SortOrder.ASC


def ranged(q: SearchQuery, column: str) -> bool:
    """Whether ``q`` limits ``column`` to a range: the walk starts at its end. A range of
    any time limits the creation time too (``search.creation_bounds``)."""
    if column == "duration_ms":
        return q.min_duration is not None or q.max_duration is not None
    return q.dated and (DATE_COLUMNS[q.date_field] == column or column == "created_at")


def skewed_walk(
    q: SearchQuery, page: Estimate, span: Span | None, complete: bool
) -> SkewedStart | None:
    """Ascending, the jobs lacking the value come first: a match among them ends the walk
    before it reaches the span, unless none of the jobs searched lacks it (``complete``)."""
    walked = walked_column(q, page)
    if walked is None or (walked[1] and walked[0] in LACKING_WHILE_UNFINISHED and not complete):
        return None
    return skewed_start(*walked, span)


def refusal(q: SearchQuery, page: Estimate, limits: CostLimits) -> BadParameter:
    """A 422 naming the parameter most likely at fault and every cheaper way to ask."""
    matches = page.rows if page.matches is None else page.matches
    return _refused(
        q,
        f"this search would have to read and sort many of its ~{matches:,} matches to return"
        f" one page (planner cost {page.cost:,.0f}, above the {limits.refuse_cost:,.0f} served)",
    )


def over_budget(q: SearchQuery, limits: CostLimits) -> BadParameter:
    return _refused(
        q,
        f"this search's first page was not found within {limits.page_budget_ms} ms: its"
        " matches lie far apart in this sort order (say, failed jobs sorted by a time most"
        " other jobs lack)",
    )


def walk_refusal(q: SearchQuery, block: LeadingBlock, limits: CostLimits) -> BadParameter:
    """A 422 for a page stuck behind a block of jobs with (or without) the sort value."""
    field = q.sort_keys()[0][0]
    order, other = ("ascending", "desc") if block.lacks else ("descending", "asc")
    advice = [f"sortOrder={other}"]
    if field is not SortField.DURATION and block.lacks:
        advice.append(
            f"limit {field.value} with startDate/endDate and dateField={field.value},"
            " which leaves out the jobs without one"
        )
    return _refused(
        q,
        f"sorted by {field.value} {order}, the ~{block.rows:,.0f} jobs"
        f" {'without' if block.lacks else 'with'} a {field.value} come first and hardly any"
        f" of them match, so its first page would read ~{block.walk:,.0f} of them (more"
        f" than the {limits.walk_max_rows:,} rows a page may read)",
        advice,
    )


def head_refusal(q: SearchQuery, head: WalkHead, limits: CostLimits) -> BadParameter:
    """A 422 for a page whose matches lie deeper in its sort order than a page may read."""
    field, order = q.sort_keys()[0]
    column, nullable, _ = SORT_COLUMNS[field]
    ascending = order is SortOrder.ASC
    first = (
        f"the jobs without a {field.value} come first, and "
        if ascending and nullable and column in LACKING_WHILE_UNFINISHED
        else ""
    )
    if head.timed_out:
        found = f"no page of matches lies among the jobs read in {HEAD_TIMEOUT_MS} ms"
    else:
        found = f"fewer than a page of the first {limits.walk_max_rows:,} jobs in that order match"
    advice = []
    if column in DATE_COLUMNS.values():
        advice.append(
            f"limit {field.value} with startDate/endDate and dateField={field.value},"
            " where the walk then starts"
        )
    return _refused(
        q,
        f"sorted by {field.value} {'ascending' if ascending else 'descending'}, {first}"
        f"{found}, so its first page would read more than the {limits.walk_max_rows:,} rows"
        " a page may read",
        advice,
    )


def skew_refusal(q: SearchQuery, start: SkewedStart, limits: CostLimits) -> BadParameter:
    """A 422 for a page stuck behind the jobs of other queues or names in its sort order."""
    field = q.sort_keys()[0][0]
    edge = start.edge_text()
    which = "queues or names" if q.search else "queues"
    order = "ascending" if start.ascending else "descending"
    if start.column == "duration_ms":
        side, than = ("below", "shorter") if start.ascending else ("above", "longer")
        where = f"a duration {side} {edge} ms, {than} than any of the jobs searched,"
        bound = f"{'minDuration' if start.ascending else 'maxDuration'}={edge}"
    elif start.dated:
        # The range of another time column put the edge there: its jobs lie within the
        # range widened by the most any job's times lie apart.
        side = "before" if start.ascending else "after"
        return _refused(
            q,
            f"sorted by {field.value} {order}, the ~{start.walk:,.0f} jobs with a"
            f" {field.value} {side} {edge} come first, and none of them has a"
            f" {q.date_field.value} within startDate/endDate, so its first page would read"
            f" them all (more than the {limits.walk_max_rows:,} rows a page may read)",
            [f"sortBy={q.date_field.value}, the time the range is on"],
        )
    else:
        side, since = (
            ("before", "the first of the jobs searched was created")
            if start.ascending
            else ("after", "the last of the jobs searched was done")
        )
        where = f"a {field.value} {side} {edge}, when {since},"
        bound = (
            f"{'startDate' if start.ascending else 'endDate'}={edge} with dateField={field.value}"
        )
    return _refused(
        q,
        f"sorted by {field.value} {order}, the ~{start.walk:,.0f} jobs of other {which} with"
        f" {where} come first, so its first page would read them all (more than the"
        f" {limits.walk_max_rows:,} rows a page may read)",
        [f"{bound}, which starts where the jobs searched do"],
    )


def _refused(q: SearchQuery, why: str, first_advice: list[str] | None = None) -> BadParameter:
    sorted_by = [f for f, _ in q.sort_keys()]
    advice = list(first_advice or [])
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


async def assess(
    conn: asyncpg.Connection,
    estimates: Estimates,
    plan: SearchPlan,
    q: SearchQuery,
    limits: CostLimits,
) -> tuple[Estimate, Verdict]:
    """Price ``plan``'s page and gather what the verdict needs: ~1-5 ms, nothing runs."""
    page = await estimates.of(conn, plan.sql, plan.args)
    nulls = span = None
    complete = False
    if page.walks:
        nulls = await estimates.null_stats(conn)
    walked = walked_column(q, page)
    if walked is not None and walked[0] in SPAN_COLUMNS and plan.restriction:
        span = await estimates.span(conn, plan.restriction, walked[0])
    if walked is not None and walked[1] and walked[0] in LACKING_WHILE_UNFINISHED:
        # Ascending, the jobs lacking the value come first: does any of them match?
        if q.min_duration is not None or q.max_duration is not None:
            complete = True  # only a job that started and finished has a duration
        elif span is not None and (plan.restriction.queues or plan.restriction.name_like):
            r = plan.restriction
            queues = r.queues or span.queues
            complete = await none_lack(conn, walked[0], queues, r.name_like, span.ended_unstarted)
    verdict = judge(q, page, limits, plan.offset, nulls, span, complete)
    if verdict.refusal is not None or walked is None or plan.matches == "true":
        return page, verdict
    order = walk_order(plan.sort, page.walk_index)
    if order is None:
        return page, verdict
    # Served by what the planner and the statistics see: read the walk's head to be sure.
    need = plan.offset + q.limit
    head = await estimates.head(
        conn, order, plan.matches, plan.estimate_args, need, limits.walk_max_rows
    )
    return page, judge(q, page, limits, plan.offset, nulls, span, complete, head)


async def guarded_search(
    app: web.Application, plan: SearchPlan, q: SearchQuery
) -> tuple[list[asyncpg.Record], int, bool]:
    """The page and total of ``plan``, priced first unless its shape is always cheap."""
    pool, limits, estimates = app[PG], app[LIMITS], app[ESTIMATES]
    page = None
    verdict = judge(q, None, limits)
    if not plan.simple:
        async with pool.acquire() as conn:
            page, verdict = await assess(conn, estimates, plan, q, limits)
    if verdict.refusal is not None:
        raise verdict.refusal
    # The lane is entered before a connection is taken: a request waiting for a slot
    # holds nothing the cheap requests need.
    lane = app[HEAVY_LANE].enter() if verdict.heavy else contextlib.nullcontext()
    # The simplest shape too: the planner may still walk the creation-time index past a
    # stretch without the one status asked for (failed jobs after a week without failures).
    # A budget no shorter than the statement timeout leaves that one (a 503) in charge.
    budget = limits.page_budget_ms if limits.page_budget_ms < limits.statement_timeout_ms else None
    try:
        async with lane, pool.acquire() as conn:
            return await execute_search(conn, plan, q, budget, estimates=estimates, page=page)
    except PageOverBudget:
        raise over_budget(q, limits) from None
