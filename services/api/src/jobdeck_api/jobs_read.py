"""Job read endpoints: search, detail, logs.

A job enqueued a few milliseconds ago may still 404 on ``GET /api/v1/jobs/{id}`` until the
recorder has consumed its ``added`` event: Postgres is written by the recorder only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from jobdeck.events import LOG_LEVELS
from jobdeck.web import PG

from jobdeck_api.errors import NotFound
from jobdeck_api.job_json import search_page_json, summary
from jobdeck_api.limits import LIMITS
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.search import encode_cursor, plan_search
from jobdeck_api.search_guard import guarded_search
from jobdeck_api.search_models import (
    AttemptSummary,
    JobDetail,
    JobTiming,
    LogLine,
    LogsPage,
    LogsQuery,
    SearchQuery,
    SearchResponse,
)
from jobdeck_api.state import SHOW_TRACEBACKS

routes = ApiRoutes()
TAG = ["jobs"]


NOT_FOUND = (404,)


@routes.route(
    "GET",
    "/api/v1/jobs/search",
    tags=TAG,
    query=SearchQuery,
    response=SearchResponse,
    response_example={
        "items": [],
        "total": 0,
        "totalExact": True,
        "page": 1,
        "offset": 0,
        "limit": 20,
        "nextCursor": None,
    },
)
async def search_jobs(call: ApiRequest[SearchQuery, None]) -> web.StreamResponse:
    """Search jobs

    Filters combine with AND; lists within one filter with OR. Results are limited to the
    queues in the caller's token. Lists may be given as `status[]=a&status[]=b`,
    `status=a&status=b` or `status=a,b`. Sorting treats a missing time or duration as the
    lowest value (last when descending), with the job id as the final tie-break.

    `total` is exact (`totalExact: true`) when counting is cheap: up to 10,000 matches;
    past that, or when a count would cost more than the page, it is Postgres's estimate
    (`totalExact: false`). `exactTotal=true` counts up to 100,000 matches (a larger
    match is refused with a 422). Pages end at row 10,000 (`page`/`offset`): for deeper
    ones follow `nextCursor` (as `cursor`), which stays fast at any depth. A substring
    `search` needs 3 characters or more.

    Costly searches are priced by the planner before they run: one that would read and
    sort a large share of its matches for one page (say a big queue sorted by attempts)
    is refused with a 422 saying how to ask instead (sort by `createdAt`, narrow with
    queues, status or dates); so is one whose sort puts a large block of jobs lacking the
    sort value first while hardly any of them match (failed jobs by `finishedAt` ascending:
    every unfinished job comes first), advising the other `sortOrder` or a range on that
    field (`dateField`); a costly one still served may wait briefly for a slot, and
    gets a 503 with `Retry-After` when none frees up, as does any statement past the
    API's statement timeout.

    The seed's example: `?search=price&status[]=completed&status[]=failed`
    `&queues[]=price-file-parser&startDate=2024-01-01&sortBy=duration&sortOrder=desc`
    `&page=1&limit=20`.
    """
    q = call.query
    plan = plan_search(q, call.principal.queues, call.app[LIMITS].exact_total_max)
    page = q.page
    if page is None and q.cursor is None and plan.offset % q.limit == 0:
        page = plan.offset // q.limit + 1
    if plan.empty:
        empty = SearchResponse(
            items=[], total=0, total_exact=True, page=page, offset=plan.offset, limit=q.limit
        )
        return web.Response(
            text=empty.model_dump_json(by_alias=True), content_type="application/json"
        )
    rows, total, exact = await guarded_search(call.app, plan, q)
    next_cursor = encode_cursor(plan.sort, rows[-1]) if len(rows) == q.limit else None
    body = search_page_json(
        rows,
        q.include_data,
        total=total,
        totalExact=exact,
        page=page,
        offset=plan.offset,
        limit=q.limit,
        nextCursor=next_cursor,
    )
    return web.Response(body=body, content_type="application/json")


async def visible_job(call: ApiRequest[Any, Any], job_id: str) -> Mapping[str, Any]:
    row = await call.app[PG].fetchrow(Q["job_detail"], job_id)
    if row is None or not call.principal.can_see(row["queue"]):
        raise NotFound(f"job {job_id!r} not found")
    return row  # type: ignore[no-any-return]


@routes.route("GET", "/api/v1/jobs/{id}", tags=TAG, response=JobDetail, errors=NOT_FOUND)
async def job_detail(call: ApiRequest[None, None]) -> JobDetail:
    """Get one job

    With its data, result, error, attempts (log lines per attempt) and timing. A job
    enqueued a few milliseconds ago may 404 until the recorder has written its row.
    """
    row = await visible_job(call, call.path("id"))
    attempts = await call.app[PG].fetch(Q["job_attempts"], row["id"])
    base = summary(row, include_data=True)
    ready_at = row["run_at"] or row["created_at"]
    wait_ms = None
    if row["started_at"] is not None:
        wait_ms = max(0, int((row["started_at"] - ready_at).total_seconds() * 1000))
    return JobDetail.model_validate(
        {
            **base,
            "error_traceback": row["error_traceback"] if call.app[SHOW_TRACEBACKS] else None,
            "updated_at": row["updated_at"],
            "attempts_left": max(0, row["max_attempts"] - row["attempts"]),
            "timing": JobTiming(
                created_at=row["created_at"],
                run_at=row["run_at"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                wait_ms=wait_ms,
                duration_ms=row["duration_ms"],
            ),
            "attempt_history": [AttemptSummary.model_validate(dict(a)) for a in attempts],
        }
    )


@routes.route(
    "GET",
    "/api/v1/jobs/{id}/logs",
    tags=TAG,
    query=LogsQuery,
    response=LogsPage,
    errors=NOT_FOUND,
)
async def job_logs(call: ApiRequest[LogsQuery, None]) -> LogsPage:
    """Get a job's log lines

    In order (attempt, then sequence), paginated by limit/offset; `level` keeps that
    level and above.
    """
    q = call.query
    row = await visible_job(call, call.path("id"))
    levels = list(LOG_LEVELS[LOG_LEVELS.index(q.level.value) :] if q.level else LOG_LEVELS)
    pool = call.app[PG]
    lines = await pool.fetch(Q["job_logs"], row["id"], q.attempt, levels, q.limit, q.offset)
    total = await pool.fetchval(Q["job_logs_count"], row["id"], q.attempt, levels)
    return LogsPage(
        job_id=row["id"],
        items=[LogLine.model_validate(dict(line)) for line in lines],
        total=total,
        limit=q.limit,
        offset=q.offset,
    )
