"""Job endpoints: search, detail, logs, enqueue (single, template, bulk), retry, cancel.

Commands act on Redis through ``QueueClient``; the recorder writes the resulting state
to Postgres from the events those scripts append, so a command answers with the state
the job is expected to reach, and a job enqueued a few milliseconds ago may still 404 on
``GET /api/v1/jobs/{id}`` until the recorder has consumed its ``added`` event.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from jobdeck.auth import Principal, Role
from jobdeck.events import LOG_LEVELS, JobStatus, current_attempt, now_ms
from jobdeck.queues import CancelOutcome, EnqueueOutcome, JobSpec, retry_claim_key
from jobdeck.web import PG
from pydantic_core import to_json

from jobdeck_api import audit
from jobdeck_api.decisions import (
    RETRY_PENDING,
    may_cancel,
    may_retry,
    spec_for_enqueue,
    spec_for_retry,
)
from jobdeck_api.errors import BadParameter, Conflict, Forbidden, NotFound
from jobdeck_api.models import (
    AttemptSummary,
    BulkActionResponse,
    BulkEnqueueRequest,
    BulkEnqueueResponse,
    BulkIdsRequest,
    EnqueuedJob,
    EnqueueRequest,
    JobActionResult,
    JobDetail,
    JobOutcome,
    JobSummary,
    JobTiming,
    LogLine,
    LogsPage,
    LogsQuery,
    SearchQuery,
    SearchResponse,
)
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest, ApiRoutes, Bucket
from jobdeck_api.search import SearchPlan, encode_cursor, plan_search
from jobdeck_api.state import QUEUES

routes = ApiRoutes()
TAG = ["jobs"]
NOT_FOUND = (404,)


# (row column, JobSummary field): the one mapping from the jobs table to the API.
SUMMARY_FIELDS = (
    ("id", "id"), ("queue", "queue"), ("name", "job_name"), ("status", "status"),
    ("priority", "priority"), ("progress", "progress"),
    ("progress_message", "progress_message"), ("attempts", "attempts"),
    ("max_attempts", "max_attempts"), ("created_at", "created_at"), ("run_at", "run_at"),
    ("started_at", "started_at"), ("finished_at", "finished_at"), ("duration_ms", "duration"),
    ("worker", "worker"), ("error_type", "error_type"), ("error_message", "error_message"),
    ("cancelled_by", "cancelled_by"), ("template_id", "template_id"),
    ("schedule_id", "schedule_id"),
)  # fmt: skip
DATA_FIELDS = (("data", "data"), ("options", "options"), ("result", "result"))


def summary(row: Mapping[str, Any], include_data: bool) -> dict[str, Any]:
    """A job row as ``JobSummary`` fields (by Python name)."""
    out = {field: row[column] for column, field in SUMMARY_FIELDS}
    if include_data:
        out.update({field: row[column] for column, field in DATA_FIELDS})
    return out


def _alias(field: str) -> str:
    info = JobSummary.model_fields[field]
    return info.alias or field


# Column of the jobs table -> JobSummary's JSON name (camelCase).
_ALIAS_OF = {column: _alias(field) for column, field in SUMMARY_FIELDS + DATA_FIELDS}
_NO_DATA = {_ALIAS_OF[column]: None for column, _ in DATA_FIELDS}


def search_page_json(rows: Sequence[asyncpg.Record], include_data: bool, **page: Any) -> bytes:
    """A search page as ``SearchResponse`` JSON, built straight from the rows.

    Rows come from our own schema, so validating 20 models per request would add nothing
    but CPU (a third of the handler's): each row's values go under the models' aliases
    (into a copy of a dict with every key, the cheapest way to build 20 of them) and
    orjson writes the page (timestamps as ``...Z``, like pydantic). The schema stays
    SearchResponse's, which the fuzz test checks every response against.
    """
    items: list[dict[str, Any]] = []
    if rows:
        # (Iterating a Record yields its values; its column names take ``keys()``.)
        aliases = [_ALIAS_OF[column] for column in rows[0].keys()]  # noqa: SIM118
        template = dict.fromkeys(aliases)
        if not include_data:
            template.update(_NO_DATA)
        for row in rows:
            item = template.copy()
            item.update(zip(aliases, row, strict=True))
            items.append(item)
    body = {"items": items, **page}
    try:
        return orjson.dumps(body, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # job data orjson cannot write (an int past 64 bits)
        return to_json(body)


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
    (`totalExact: false`). `exactTotal=true` always counts. For deep pages, follow
    `nextCursor` (as `cursor`) rather than large page numbers.

    The seed's example: `?search=price&status[]=completed&status[]=failed`
    `&queues[]=price-file-parser&startDate=2024-01-01&sortBy=duration&sortOrder=desc`
    `&page=1&limit=20`.
    """
    q = call.query
    plan = plan_search(q, call.principal.queues)
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
    async with call.app[PG].acquire() as conn:
        rows, total, exact = await execute_search(conn, plan, q)
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
            "error_traceback": row["error_traceback"],
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


def _check_queue(principal: Principal, queue: str, where: str) -> None:
    if not principal.can_see(queue):
        raise Forbidden(f"{where}: queue {queue!r} is outside the queues of your token")


async def _specs(call: ApiRequest[Any, Any], requests: Sequence[EnqueueRequest]) -> list[JobSpec]:
    """Resolve templates and queue defaults for a batch with two queries in all."""
    pool = call.app[PG]
    template_ids = sorted({r.template_id for r in requests if r.template_id})
    templates = {}
    if template_ids:
        templates = {t["id"]: t for t in await pool.fetch(Q["templates_for"], template_ids)}
    queues = set()
    for i, r in enumerate(requests):
        where = "body" if len(requests) == 1 else f"jobs.{i}"
        if r.template_id and r.template_id not in templates:
            raise BadParameter(
                f"{where}.templateId: no template {r.template_id!r}",
                [{"in": "body", "name": f"{where}.templateId", "reason": "no such template"}],
            )
        queue = r.queue or templates[r.template_id]["queue"]
        _check_queue(call.principal, queue, where)
        queues.add(queue)
    configs = {c["queue"]: c for c in await pool.fetch(Q["queue_configs_for"], sorted(queues))}
    now = now_ms()
    specs = []
    for r in requests:
        template = templates.get(r.template_id) if r.template_id else None
        queue = r.queue or (template["queue"] if template else "")
        specs.append(spec_for_enqueue(r, now, template, configs.get(queue)))
    ids = [s.job_id for s in specs]
    if len(set(ids)) != len(ids):
        raise BadParameter("jobs: the same jobId appears twice in one request")
    return specs


async def _taken_ids(call: ApiRequest[Any, Any], requests: Sequence[EnqueueRequest]) -> set[str]:
    """Caller-chosen ids that already name a job in Postgres, whatever its queue.

    Redis only refuses an id while arq's keys for it exist; a finished job's row outlives
    them, and reusing its id would graft a new job (maybe on another queue) onto that
    row's history. Running a job again is what ``retry`` is for. Generated ids are fresh.
    """
    chosen = [r.job_id for r in requests if r.job_id is not None]
    if not chosen:
        return set()
    return {r["id"] for r in await call.app[PG].fetch(Q["existing_job_ids"], chosen)}


def _initial_status(spec: JobSpec, now: int) -> str:
    delayed = spec.run_at_ms is not None and spec.run_at_ms > now
    return JobStatus.DELAYED.value if delayed else JobStatus.WAITING.value


def _enqueued(spec: JobSpec, now: int) -> EnqueuedJob:
    return EnqueuedJob(
        id=spec.job_id,
        queue=spec.queue,
        job_name=spec.name,
        status=JobStatus(_initial_status(spec, now)),
        priority=spec.priority,
        max_attempts=spec.max_attempts,
        run_at=_dt(spec.run_at_ms) if spec.run_at_ms is not None else None,
        created_at=_dt(now),
    )


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@routes.route(
    "POST",
    "/api/v1/jobs",
    tags=TAG,
    role=Role.OPERATOR,
    body=EnqueueRequest,
    response=EnqueuedJob,
    status=201,
    errors=(403, 409),
    body_example={
        "queue": "price-file-parser",
        "name": "price-file-parser",
        "data": {"path": "/data/prices.csv"},
        "priority": 5,
        "delayMs": 0,
        "maxAttempts": 3,
    },
)
async def enqueue_job(call: ApiRequest[None, EnqueueRequest]) -> EnqueuedJob:
    """Enqueue a job

    Give `queue` and `name` (the task), or a `templateId` whose fields are the defaults.
    Unset attempts, backoff and timeout come from the queue's config, else the library
    defaults. The job's row appears in search once the recorder has consumed its event.
    """
    (spec,) = await _specs(call, [call.body])
    taken = bool(await _taken_ids(call, [call.body]))
    ok = not taken and await call.app[QUEUES].enqueue(spec, by=call.principal.sub)
    await audit.record(
        call,
        "jobs.enqueue",
        [spec.job_id],
        audit.Outcome.OK if ok else audit.Outcome.REFUSED,
        {"queue": spec.queue, "name": spec.name},
    )
    if not ok:
        # One answer whatever queue holds the id, so it tells a caller scoped to other
        # queues nothing that a GET (404) would not.
        raise Conflict(f"the job id {spec.job_id!r} is not available; choose another id")
    return _enqueued(spec, now_ms())


@routes.route(
    "POST",
    "/api/v1/jobs/bulk",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkEnqueueRequest,
    response=BulkEnqueueResponse,
    status=201,
    bucket=Bucket.BULK,
    errors=(403,),
    body_example={
        "jobs": [
            {"queue": "price-file-parser", "name": "price-file-parser", "data": {"n": 1}},
            {"templateId": "550e8400-e29b-41d4-a716-446655440000"},
        ]
    },
)
async def enqueue_bulk(call: ApiRequest[None, BulkEnqueueRequest]) -> web.StreamResponse:
    """Enqueue many jobs

    Up to 1,000 jobs in one call, written to Redis in one pipelined round trip.
    The whole request is refused if any job is invalid; a job whose id already exists is
    reported as `duplicate`.
    """
    specs = await _specs(call, call.body.jobs)
    taken = await _taken_ids(call, call.body.jobs)
    fresh = [s for s in specs if s.job_id not in taken]
    queued = iter(await call.app[QUEUES].enqueue_many(fresh, by=call.principal.sub))
    results = [s.job_id not in taken and next(queued) for s in specs]
    now = now_ms()
    # Built as plain JSON (BulkEnqueueResponse's shape): 1,000 models a call cost more
    # than the Redis round trip.
    items = [
        {
            "index": i,
            "id": spec.job_id,
            "outcome": "queued" if ok else "duplicate",
            "status": _initial_status(spec, now) if ok else None,
        }
        for i, (spec, ok) in enumerate(zip(specs, results, strict=True))
    ]
    counts: dict[str, int] = dict(Counter(str(item["outcome"]) for item in items))
    await audit.record(
        call,
        "jobs.bulk_enqueue",
        [s.job_id for s in specs],
        audit.Outcome.OK if all(results) else audit.Outcome.PARTIAL,
        {"counts": counts, "queues": sorted({s.queue for s in specs})},
    )
    return web.Response(
        body=to_json({"items": items, "counts": counts}),
        status=201,
        content_type="application/json",
    )


async def _retry_rows(call: ApiRequest[Any, Any], ids: Sequence[str]) -> list[JobActionResult]:
    rows = {r["id"]: r for r in await call.app[PG].fetch(Q["jobs_for_action"], list(ids))}
    client = call.app[QUEUES]
    results = []
    for job_id in ids:
        row = rows.get(job_id)
        if row is None or not call.principal.can_see(row["queue"]):
            results.append(JobActionResult(id=job_id, outcome=JobOutcome.NOT_FOUND))
            continue
        verdict = may_retry(row["status"], row.get("added_attempt", 1))
        if not verdict.allowed:
            results.append(
                JobActionResult(
                    id=job_id,
                    outcome=JobOutcome.SKIPPED,
                    reason=verdict.reason,
                    previous_status=row["status"],
                )
            )
            continue
        # One retry per attempt, claimed atomically with the enqueue: the row may be stale
        # (the recorder a moment behind a first retry's run), and both would run attempt n+1.
        spec = spec_for_retry(row)
        claim = retry_claim_key(job_id, spec.attempt_offset)
        queued = await client.enqueue_claimed(spec, claim, by=call.principal.sub, replace=True)
        ok = queued is EnqueueOutcome.QUEUED
        results.append(
            JobActionResult(
                id=job_id,
                outcome=JobOutcome.RETRIED if ok else JobOutcome.SKIPPED,
                reason=None if ok else RETRY_PENDING,
                previous_status=row["status"],
                status=JobStatus.WAITING if ok else None,
            )
        )
    return results


async def _cancel_rows(call: ApiRequest[Any, Any], ids: Sequence[str]) -> list[JobActionResult]:
    rows = {r["id"]: r for r in await call.app[PG].fetch(Q["jobs_for_action"], list(ids))}
    client = call.app[QUEUES]
    results = []
    for job_id in ids:
        row = rows.get(job_id)
        if row is None or not call.principal.can_see(row["queue"]):
            results.append(JobActionResult(id=job_id, outcome=JobOutcome.NOT_FOUND))
            continue
        verdict = may_cancel(row["status"])
        if not verdict.allowed:
            results.append(
                JobActionResult(
                    id=job_id,
                    outcome=JobOutcome.SKIPPED,
                    reason=verdict.reason,
                    previous_status=row["status"],
                )
            )
            continue
        outcome = await client.cancel(
            job_id,
            row["queue"],
            row["name"],
            current_attempt(row["attempts"], row["version"]),
            by=call.principal.sub,
        )
        if outcome is CancelOutcome.GONE:
            results.append(
                JobActionResult(
                    id=job_id,
                    outcome=JobOutcome.SKIPPED,
                    reason="job is no longer queued or running (it may have just finished)",
                    previous_status=row["status"],
                )
            )
        else:
            results.append(
                JobActionResult(
                    id=job_id,
                    outcome=JobOutcome.CANCELLED
                    if outcome is CancelOutcome.CANCELLED
                    else JobOutcome.CANCELLING,
                    previous_status=row["status"],
                    status=JobStatus.CANCELLED,
                )
            )
    return results


def _bulk_response(results: list[JobActionResult]) -> BulkActionResponse:
    counts = {o.value: 0 for o in JobOutcome}
    counts.update(Counter(r.outcome.value for r in results))
    return BulkActionResponse(results=results, counts=counts, total=len(results))


def _audit_outcome(results: list[JobActionResult], done: set[JobOutcome]) -> str:
    n = sum(r.outcome in done for r in results)
    if n == len(results):
        return audit.Outcome.OK
    return audit.Outcome.PARTIAL if n else audit.Outcome.REFUSED


BULK_IDS_EXAMPLE = {"jobIds": ["job1", "job2", "job3"]}


@routes.route(
    "POST",
    "/api/v1/jobs/bulk/retry",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkIdsRequest,
    response=BulkActionResponse,
    bucket=Bucket.BULK,
    body_example=BULK_IDS_EXAMPLE,
)
async def bulk_retry(call: ApiRequest[None, BulkIdsRequest]) -> BulkActionResponse:
    """Retry many jobs

    Up to 1,000 ids. Each failed or cancelled job is queued again under its id
    (its next attempt numbered after the last); others are skipped with the reason.
    """
    ids = list(dict.fromkeys(call.body.job_ids))
    results = await _retry_rows(call, ids)
    await audit.record(
        call,
        "jobs.bulk_retry",
        ids,
        _audit_outcome(results, {JobOutcome.RETRIED}),
        {"counts": _bulk_response(results).counts},
    )
    return _bulk_response(results)


@routes.route(
    "POST",
    "/api/v1/jobs/bulk/cancel",
    tags=TAG,
    role=Role.OPERATOR,
    body=BulkIdsRequest,
    response=BulkActionResponse,
    bucket=Bucket.BULK,
    body_example=BULK_IDS_EXAMPLE,
)
async def bulk_cancel(call: ApiRequest[None, BulkIdsRequest]) -> BulkActionResponse:
    """Cancel many jobs

    Up to 1,000 ids. Waiting and delayed jobs are removed at once (`cancelled`);
    running jobs are aborted by their worker (`cancelling`); others are skipped.
    """
    ids = list(dict.fromkeys(call.body.job_ids))
    results = await _cancel_rows(call, ids)
    done = {JobOutcome.CANCELLED, JobOutcome.CANCELLING}
    await audit.record(
        call,
        "jobs.bulk_cancel",
        ids,
        _audit_outcome(results, done),
        {"counts": _bulk_response(results).counts},
    )
    return _bulk_response(results)


def _single(result: JobActionResult) -> JobActionResult:
    if result.outcome is JobOutcome.NOT_FOUND:
        raise NotFound(f"job {result.id!r} not found")
    if result.outcome is JobOutcome.SKIPPED:
        raise Conflict(result.reason or "job cannot be changed in its current state")
    return result


@routes.route(
    "POST",
    "/api/v1/jobs/{id}/retry",
    tags=TAG,
    role=Role.OPERATOR,
    response=JobActionResult,
    errors=(404, 409),
)
async def retry_job(call: ApiRequest[None, None]) -> JobActionResult:
    """Retry a failed or cancelled job

    409 if the job is in another state.
    """
    job_id = call.path("id")
    (result,) = await _retry_rows(call, [job_id])
    await audit.record(
        call,
        "jobs.retry",
        [job_id],
        _audit_outcome([result], {JobOutcome.RETRIED}),
        {"outcome": result.outcome.value, "reason": result.reason},
    )
    return _single(result)


@routes.route(
    "POST",
    "/api/v1/jobs/{id}/cancel",
    tags=TAG,
    role=Role.OPERATOR,
    response=JobActionResult,
    errors=(404, 409),
)
async def cancel_job(call: ApiRequest[None, None]) -> JobActionResult:
    """Cancel a waiting, delayed or active job

    409 if the job is in another state.
    """
    job_id = call.path("id")
    (result,) = await _cancel_rows(call, [job_id])
    await audit.record(
        call,
        "jobs.cancel",
        [job_id],
        _audit_outcome([result], {JobOutcome.CANCELLED, JobOutcome.CANCELLING}),
        {"outcome": result.outcome.value, "reason": result.reason},
    )
    return _single(result)
