"""Export endpoints: request an export of the jobs a search would show, follow it, delete it.

The API only records and hands over: it validates the request (the search's own filter
model, the search item's field names), refuses it up front when the filters match more
rows than one export may hold, throttles per caller, inserts the ``exports`` row and puts
the request on the exporter's stream (``jobdeck.exports``). It then waits a few seconds
for the exporter to finish: most exports do, and the answer is 200 with the download
``url`` (the seed's ``const { url } = await response.json()``); a longer one answers 202
with a status URL, and the requester's sockets get ``exportProgress``/``exportCompleted``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from jobdeck.auth import Principal, Role
from jobdeck.exports import (
    DEFAULT_MAX_ROWS,
    ExportFormat,
    ExportStatus,
    done_key,
    max_rows_from_env,
    request_delete,
    request_export,
)
from jobdeck.jobsql import Sql, filter_jobs
from jobdeck.settings import parse_float, parse_int
from jobdeck.sql import load_queries
from jobdeck.web import PG, REDIS, problem, request_id
from redis.exceptions import RedisError

from jobdeck_api import audit
from jobdeck_api.errors import BadParameter, NotFound
from jobdeck_api.export_models import ExportInfo, ExportList, ExportListQuery, ExportRequest
from jobdeck_api.routing import ApiRequest, ApiRoutes

routes = ApiRoutes()
TAG = ["exports"]
Q = load_queries("jobdeck_api", "sql/exports.sql")
STATUS_PATH = "/api/v1/jobs/exports/{}"


@dataclass(frozen=True)
class ExportLimits:
    """How long a request waits for its export, the row limit, and the per-caller throttle."""

    wait_s: float = 5.0
    max_rows: int = DEFAULT_MAX_ROWS
    in_flight: int = 2  # pending or running exports per caller
    per_hour: int = 10  # exports requested per caller in any hour
    busy_retry_s: int = 5  # Retry-After when the caller's in-flight limit is reached

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExportLimits:
        """``JOBDECK_API_EXPORT_WAIT_S`` (0-60), ``..._EXPORT_IN_FLIGHT``,
        ``..._EXPORTS_PER_HOUR``, ``JOBDECK_EXPORT_MAX_ROWS``; ConfigError if one is bad."""
        wait, in_flight, per_hour = (
            "JOBDECK_API_EXPORT_WAIT_S",
            "JOBDECK_API_EXPORT_IN_FLIGHT",
            "JOBDECK_API_EXPORTS_PER_HOUR",
        )
        return cls(
            wait_s=parse_float(wait, env[wait], 0, 60) if wait in env else cls.wait_s,
            max_rows=max_rows_from_env(env),
            in_flight=(
                parse_int(in_flight, env[in_flight], 1, 1000) if in_flight in env else cls.in_flight
            ),
            per_hour=(
                parse_int(per_hour, env[per_hour], 1, 100_000) if per_hour in env else cls.per_hour
            ),
        )


EXPORT_LIMITS = web.AppKey("export_limits", ExportLimits)


def throttle_wait(
    in_flight: int, recent: Sequence[datetime], now: datetime, limits: ExportLimits
) -> tuple[int, str] | None:
    """Seconds to wait and why, when the caller may not start another export now."""
    if in_flight >= limits.in_flight:
        return limits.busy_retry_s, f"{in_flight} of your exports are still running"
    if len(recent) >= limits.per_hour:
        oldest = sorted(recent)[len(recent) - limits.per_hour]
        wait = math.ceil((oldest + timedelta(hours=1) - now).total_seconds())
        return max(1, wait), f"{limits.per_hour} exports an hour is the limit"
    return None


def default_filename(fmt: ExportFormat, export_id: str, now: datetime, name: str | None) -> str:
    """``name.ext``, or ``jobs-<UTC time>-<id>.ext``; the extension always the format's."""
    ext = fmt.extension
    if name:
        stem = name.strip()
        if stem.lower().endswith("." + ext):
            stem = stem[: -len(ext) - 1]
        return f"{stem}.{ext}"
    return f"jobs-{now:%Y%m%d-%H%M%S}-{export_id[:8]}.{ext}"


def export_info(row: Mapping[str, Any]) -> ExportInfo:
    estimated = row["rows_estimated"]
    done = row["rows_done"] or 0
    status = ExportStatus(row["status"])
    progress = 1.0 if status is ExportStatus.DONE else None
    if progress is None and estimated:
        progress = min(1.0, done / estimated)
    return ExportInfo(
        id=row["id"],
        status=status,
        format=ExportFormat(row["format"]),
        filename=row["filename"],
        url=row["url"] if status is ExportStatus.DONE else None,
        status_url=STATUS_PATH.format(row["id"]),
        rows=done,
        rows_estimated=estimated,
        progress=progress,
        bytes=row["size_bytes"],
        error=row["error"],
        requested_by=row["requested_by"],
        filters=row["filters"] or {},
        fields=list(row["fields"]) if row["fields"] is not None else None,
        include_data=row["include_data"],
        include_logs=row["include_logs"],
        sort_by=row["sort_by"],
        sort_order=row["sort_order"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
    )


def _json(info: ExportInfo, status: int) -> web.Response:
    return web.Response(
        text=info.model_dump_json(by_alias=True), status=status, content_type="application/json"
    )


async def _count(call: ApiRequest[None, ExportRequest], limits: ExportLimits) -> int:
    """Rows the export will hold, counted up to one past the limit: a 422 past it.

    A count, not the planner's estimate, which can be off by orders of magnitude; capped,
    so asking for everything costs at most the limit's worth of index entries."""
    sql = Sql()
    if filter_jobs(sql, call.body.filters, call.principal.queues):
        return 0
    capped = f"SELECT count(*) FROM (SELECT 1 FROM jobs{sql.where()} LIMIT {limits.max_rows + 1}) c"
    count = int(await call.app[PG].fetchval(capped, *sql.args))
    if count > limits.max_rows:
        raise BadParameter(
            f"filters: match more than {limits.max_rows:,} jobs, the most one export may"
            " hold; narrow them (e.g. a shorter date range)",
            [{"in": "body", "name": "filters", "reason": "too many matching jobs"}],
        )
    return count


@routes.route(
    "POST",
    "/api/v1/jobs/export",
    tags=TAG,
    body=ExportRequest,
    response=ExportInfo,
    also=(202,),
    errors=(429,),
    body_example={
        "format": "excel",
        "filters": {"status": ["completed"], "startDate": "2024-01-01"},
        "includeLogs": True,
    },
)
async def create_export(call: ApiRequest[None, ExportRequest]) -> web.StreamResponse:
    """Export jobs to CSV, JSON, NDJSON or Excel

    The export holds exactly the jobs `GET /api/v1/jobs/search` shows the caller with the
    same `filters` (same names and validation; the token's queues apply), as of the moment
    it starts, sorted by `sortBy`/`sortOrder`. Answers 200 with the download `url` when it
    is done within a few seconds, else 202 with `statusUrl` (progress, then `url`); either
    way the caller's sockets get `exportProgress`, `exportCompleted` or `exportFailed`. An
    export that failed within the wait answers 200 with `status: "failed"` and `error`.
    URLs expire with the export (1 h by default). Throttled per caller: 2 in flight and
    10 an hour by default (429 with Retry-After).
    """
    body, p = call.body, call.principal
    limits = call.app[EXPORT_LIMITS]
    estimate = await _count(call, limits)
    raw = await call.request.json()  # the filters as sent: re-validated as such by the exporter
    raw_filters = raw.get("filters") or {}
    now = datetime.now(UTC)
    export_id = uuid.uuid4().hex
    filename = default_filename(body.format, export_id, now, body.filename)
    scope = sorted(p.queues) if p.queues is not None else None
    pool = call.app[PG]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(Q["lock_caller"], p.sub)
        load_row = await conn.fetchrow(Q["caller_load"], p.sub)
        refusal = throttle_wait(load_row["in_flight"], load_row["recent"], now, limits)
        if refusal is None:
            row = await conn.fetchrow(
                Q["insert_export"], export_id, p.sub, body.format.value, raw_filters,
                body.fields, body.include_data, body.include_logs, scope, body.sort_by,
                body.sort_order, filename, estimate, call.request_id,
            )  # fmt: skip
    detail = {"format": body.format.value, "filters": raw_filters, "estimate": estimate}
    if refusal is not None:
        wait, why = refusal
        await audit.record(call, "jobs.export", [], audit.Outcome.REFUSED, {**detail, "why": why})
        response = problem(
            429, f"export throttled: {why}; retry in {wait} s", request_id=request_id(call.request)
        )
        response.headers["Retry-After"] = str(wait)
        return response
    await request_export(call.app[REDIS], export_id)
    await audit.record(call, "jobs.export", [export_id], audit.Outcome.OK, detail)
    row = await _wait_for_end(call, export_id, limits.wait_s) or row
    info = export_info(row)
    return _json(info, 200 if info.status in (ExportStatus.DONE, ExportStatus.FAILED) else 202)


async def _wait_for_end(
    call: ApiRequest[Any, Any], export_id: str, wait_s: float
) -> Mapping[str, Any] | None:
    """The export's row once the exporter says it ended, or None after ``wait_s``."""
    if wait_s <= 0:
        return None
    try:
        # (redis-py types the timeout as int; Redis takes fractions of a second)
        ended = await call.app[REDIS].blpop(  # type: ignore[misc]
            [done_key(export_id)],
            timeout=wait_s,  # type: ignore[arg-type]
        )
    except (RedisError, OSError):
        return None
    if ended is None:
        return None
    row: Mapping[str, Any] | None = await call.app[PG].fetchrow(Q["get_export"], export_id)
    return row


def _visible(p: Principal, row: Mapping[str, Any] | None, export_id: str) -> Mapping[str, Any]:
    if row is None or (row["requested_by"] != p.sub and not p.has_role(Role.ADMIN)):
        raise NotFound(f"export {export_id!r} not found")
    return row


@routes.route("GET", "/api/v1/jobs/exports", tags=TAG, query=ExportListQuery, response=ExportList)
async def list_exports(call: ApiRequest[ExportListQuery, None]) -> ExportList:
    """List exports

    The caller's own exports, newest first (admins: everyone's), until they expire.
    """
    p, q = call.principal, call.query
    owner = None if p.has_role(Role.ADMIN) else p.sub
    status = q.status.value if q.status is not None else None
    rows = await call.app[PG].fetch(Q["list_exports"], owner, status, q.limit)
    return ExportList(items=[export_info(r) for r in rows])


@routes.route("GET", "/api/v1/jobs/exports/{id}", tags=TAG, response=ExportInfo, errors=(404,))
async def get_export(call: ApiRequest[None, None]) -> ExportInfo:
    """Export status, progress and download URL"""
    export_id = call.path("id")
    row = await call.app[PG].fetchrow(Q["get_export"], export_id)
    return export_info(_visible(call.principal, row, export_id))


@routes.route("DELETE", "/api/v1/jobs/exports/{id}", tags=TAG, status=204, errors=(404,))
async def delete_export(call: ApiRequest[None, None]) -> web.StreamResponse:
    """Delete an export and its file

    The download URL stops working; a running export stops.
    """
    export_id = call.path("id")
    pool = call.app[PG]
    _visible(call.principal, await pool.fetchrow(Q["get_export"], export_id), export_id)
    key = await pool.fetchval(Q["delete_export"], export_id)
    if key:
        await request_delete(call.app[REDIS], key)
    await audit.record(call, "jobs.export.delete", [export_id], audit.Outcome.OK)
    return web.Response(status=204)
