"""Schedule endpoints (``/api/v1/jobs/schedules``): the seed's CRUD and run-now, pause and
resume, previews of the next fire times, and the run history.

The API writes ``next_run_at`` (computed by ``jobdeck.cron``, as the scheduler does) and
a trigger on the table wakes the schedulers, which pick the change up at once. Admins
create, change and delete schedules; operators run, pause and resume them; a schedule
whose template's queue is outside the caller's token does not exist for it (404).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from jobdeck.auth import Role
from jobdeck.cron import CronError, CronSchedule, parse, zone
from jobdeck.schedules import manual_job_id, scheduled_job
from jobdeck.web import PG
from redis.exceptions import RedisError

from jobdeck_api import audit
from jobdeck_api.errors import BadParameter, Conflict, NotFound, Unavailable
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.schedule_models import (
    Deleted,
    FireTime,
    PreviewQuery,
    RunCounters,
    RunNow,
    RunPage,
    RunsQuery,
    Schedule,
    ScheduleInput,
    SchedulePage,
    ScheduleQuery,
    ScheduleRun,
    ScheduleUpdate,
)
from jobdeck_api.scoped_rows import fetch_page, fetch_visible
from jobdeck_api.state import QUEUES
from jobdeck_api.templates_api import S

routes = ApiRoutes()
TAG = ["schedules"]
BASE = "/api/v1/jobs/schedules"
SEED_EXAMPLE = {
    "name": "Daily Analytics Refresh",
    "description": "Refreshes analytics data every day at 2 AM",
    "templateId": "550e8400-e29b-41d4-a716-446655440000",
    "cronExpression": "0 2 * * *",
    "timezone": "America/New_York",
    "priority": 5,
    "isEnabled": True,
}
NULLABLE = frozenset({"description", "priority", "data"})
# Columns of a schedule row that PUT may change, by model field.
EDITABLE = (
    "name", "description", "template_id", "cron_expression", "timezone", "priority", "data",
    "is_enabled", "overlap_policy", "catch_up_policy", "catch_up_window_s", "catch_up_limit",
    "jitter_s", "max_consecutive_failures",
)  # fmt: skip


def _bad(field: str, reason: str) -> BadParameter:
    return BadParameter(f"{field}: {reason}", [{"in": "body", "name": field, "reason": reason}])


def _cron(expression: str, timezone: str) -> CronSchedule:
    try:
        return parse(expression, timezone)
    except CronError as exc:
        raise _bad(exc.field, exc.reason) from None


def _fire_time(at: datetime, cron: CronSchedule) -> FireTime:
    return FireTime(at=at, local=at.astimezone(zone(cron.timezone)).isoformat())


def schedule_model(row: Mapping[str, Any], preview: int) -> Schedule:
    cron = CronSchedule(row["cron_expression"], row["timezone"])
    next_at = row["next_run_at"] if row["is_enabled"] else None
    try:
        description = cron.describe()
        upcoming = cron.preview(next_at, preview - 1) if next_at and preview > 1 else []
    except CronError:
        description, upcoming = f"invalid: {row['cron_expression']}", []
    next_runs = [_fire_time(t, cron) for t in ([next_at] if next_at and preview else [])]
    next_runs += [_fire_time(t, cron) for t in upcoming]
    return Schedule(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        template_id=row["template_id"],
        template_name=row["template_name"],
        queue=row["queue"],
        job_name=row["task"],
        cron_expression=row["cron_expression"],
        cron_description=description,
        timezone=row["timezone"],
        priority=row["priority"],
        data=row["data"],
        is_enabled=row["is_enabled"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
        overlap_policy=row["overlap_policy"],
        catch_up_policy=row["catch_up_policy"],
        catch_up_window_s=row["catch_up_window_s"],
        catch_up_limit=row["catch_up_limit"],
        jitter_s=row["jitter_s"],
        max_consecutive_failures=row["max_consecutive_failures"],
        consecutive_failures=row["consecutive_failures"],
        next_run_at=next_at,
        next_run_at_local=next_runs[0].local if next_runs else None,
        next_runs=next_runs,
        last_run_at=row["last_run_at"],
        last_job_id=row["last_job_id"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        runs=RunCounters(
            fired=row["runs_fired"],
            skipped=row["runs_skipped"],
            missed=row["runs_missed"],
            failed_to_enqueue=row["runs_failed_to_enqueue"],
        ),
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def run_model(row: Mapping[str, Any]) -> ScheduleRun:
    return ScheduleRun(
        id=row["id"],
        scheduled_at=row["scheduled_at"],
        last_slot_at=row["last_slot_at"],
        slot_count=row["slot_count"],
        trigger=row["trigger"],
        outcome=row["outcome"],
        reason=row["reason"],
        enqueued_at=row["enqueued_at"],
        lag_ms=row["lag_ms"],
        job_id=row["job_id"],
        job_status=row["job_status"] or row["live_status"],
        recorded_at=row["recorded_at"],
    )


async def _fetch(call: ApiRequest[Any, Any], schedule_id: str) -> Mapping[str, Any]:
    """The schedule as the caller may see it, or 404."""
    sql = S["schedule_select"] + " WHERE s.id = $1"
    return await fetch_visible(call.app[PG], call, "schedule", sql, schedule_id)


async def _template(call: ApiRequest[Any, Any], conn: Any, ref: str) -> Mapping[str, Any]:
    row: Mapping[str, Any] | None = await conn.fetchrow(S["template_resolve"], ref)
    if row is None or not call.principal.can_see(row["queue"]):
        raise _bad("templateId", f"no template with id or name {ref!r}")
    return row


def _next_run(cron: CronSchedule, enabled: bool) -> datetime | None:
    return cron.next_after(datetime.now(UTC)) if enabled else None


async def _read_back(call: ApiRequest[Any, Any], schedule_id: str, preview: int = 5) -> Schedule:
    return schedule_model(await _fetch(call, schedule_id), preview)


@routes.route("GET", BASE, tags=TAG, query=ScheduleQuery, response=SchedulePage)
async def list_schedules(call: ApiRequest[ScheduleQuery, None]) -> SchedulePage:
    """List schedules

    Those whose template's queue the caller may see, by name; filter by `enabled`,
    `queue` and `templateId`. Each carries its next fire times (`preview`, default 5).
    """
    q = call.query
    filters = (q.enabled, q.queue, q.template_id)

    def item(row: Mapping[str, Any]) -> Schedule:
        return schedule_model(row, q.preview)

    return await fetch_page(call, S["schedule_list"], filters, SchedulePage, item)


@routes.route("GET", BASE + "/{id}", tags=TAG, query=PreviewQuery, response=Schedule, errors=(404,))
async def get_schedule(call: ApiRequest[PreviewQuery, None]) -> Schedule:
    """Get a schedule

    With its next fire times in UTC and in its zone (`preview`, default 5, at most 50), a
    plain-English description, the last run's job status and the run counters.
    """
    return schedule_model(await _fetch(call, call.path("id")), call.query.preview)


@routes.route(
    "POST",
    BASE,
    tags=TAG,
    role=Role.ADMIN,
    body=ScheduleInput,
    response=Schedule,
    status=201,
    errors=(403, 409),
    body_example=SEED_EXAMPLE,
)
async def create_schedule(call: ApiRequest[None, ScheduleInput]) -> Schedule:
    """Create a schedule

    `templateId` is a template's id or its unique name; `cronExpression` has 5 fields, 6
    with a leading seconds field, or is an alias (`@hourly`, `@daily`, ...); `timezone` is
    an IANA zone (default UTC). See the README for the DST rules and the policies.
    """
    b = call.body
    cron = _cron(b.cron_expression, b.timezone)
    async with call.app[PG].acquire() as conn:
        template = await _template(call, conn, b.template_id)
        try:
            sid = await conn.fetchval(
                S["schedule_insert"], b.name, b.description, template["id"], cron.expression,
                b.timezone, b.priority, b.data, b.is_enabled, str(b.overlap_policy),
                str(b.catch_up_policy), b.catch_up_window_s, b.catch_up_limit, b.jitter_s,
                b.max_consecutive_failures, _next_run(cron, b.is_enabled), call.principal.sub,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            await audit.record(call, "schedules.create", [b.name], audit.Outcome.REFUSED)
            raise Conflict(f"a schedule named {b.name!r} already exists") from None
    await audit.record(
        call, "schedules.create", [sid], audit.Outcome.OK, b.model_dump(by_alias=True)
    )
    return await _read_back(call, sid)


@routes.route(
    "PUT",
    BASE + "/{id}",
    tags=TAG,
    role=Role.ADMIN,
    body=ScheduleUpdate,
    response=Schedule,
    errors=(404, 409),
    body_example={"cronExpression": "30 2 * * *", "timezone": "Europe/Berlin"},
)
async def update_schedule(call: ApiRequest[None, ScheduleUpdate]) -> Schedule:
    """Update a schedule

    Fields left out keep their values. A new expression, zone or enabling recomputes the
    next run from now; enabling also clears the failure count and the disabled reason.
    """
    changes = {f: getattr(call.body, f) for f in call.body.model_fields_set}
    sid = await _apply(call, changes, "schedules.update")
    return await _read_back(call, sid)


async def _apply(
    call: ApiRequest[Any, Any], changes: dict[str, Any], action: str, verb: str = "disabled"
) -> str:
    """Change one schedule under its row lock; validates the result as a whole.

    Disabling it records who did (``verb`` by ``sub``) as the disabled reason.
    """
    sid = call.path("id")
    async with call.app[PG].acquire() as conn, conn.transaction():
        row = await fetch_visible(conn, call, "schedule", S["schedule_lock"], sid)
        new = {f: row[f] for f in EDITABLE}
        for f, value in changes.items():
            if value is None and f not in NULLABLE:
                raise _bad(_camel(f), "must not be null")
            new[f] = str(value) if f.endswith("_policy") and value is not None else value
        if "template_id" in changes:
            new["template_id"] = (await _template(call, conn, changes["template_id"]))["id"]
        if new["is_enabled"] and new["template_id"] is None:
            raise _bad("templateId", "a schedule without a template cannot be enabled")
        cron = _cron(new["cron_expression"], new["timezone"])
        enabling = bool(new["is_enabled"]) and not row["is_enabled"]
        disabling = row["is_enabled"] and not new["is_enabled"]
        reason = f"{verb} by {call.principal.sub}" if disabling else None
        timing = any(new[f] != row[f] for f in ("cron_expression", "timezone", "is_enabled"))
        next_run = _next_run(cron, new["is_enabled"]) if timing else row["next_run_at"]
        try:
            await conn.execute(
                S["schedule_update"], sid, new["name"], new["description"], new["template_id"],
                cron.expression, new["timezone"], new["priority"], new["data"],
                new["is_enabled"], new["overlap_policy"], new["catch_up_policy"],
                new["catch_up_window_s"], new["catch_up_limit"], new["jitter_s"],
                new["max_consecutive_failures"], next_run, call.principal.sub, enabling, reason,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a schedule named {new['name']!r} already exists") from None
    detail = {_camel(k): (str(v) if isinstance(v, datetime) else v) for k, v in changes.items()}
    await audit.record(call, action, [sid], audit.Outcome.OK, detail)
    return sid


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@routes.route("DELETE", BASE + "/{id}", tags=TAG, role=Role.ADMIN, response=Deleted, errors=(404,))
async def delete_schedule(call: ApiRequest[None, None]) -> Deleted:
    """Delete a schedule

    With its run history; the jobs it queued stay.
    """
    sid = call.path("id")
    await _fetch(call, sid)
    deleted = await call.app[PG].fetchval(S["schedule_delete"], sid)
    if deleted is None:
        raise NotFound(f"schedule {sid!r} not found")
    await audit.record(call, "schedules.delete", [sid], audit.Outcome.OK)
    return Deleted(id=sid, deleted=True)


@routes.route(
    "POST", BASE + "/{id}/pause", tags=TAG, role=Role.OPERATOR, response=Schedule, errors=(404,)
)
async def pause_schedule(call: ApiRequest[None, None]) -> Schedule:
    """Pause a schedule

    Shorthand for `isEnabled: false`: no slot fires until it is resumed, and the slots in
    between are not owed (they are not caught up on resume).
    """
    sid = await _apply(call, {"is_enabled": False}, "schedules.pause", "paused")
    return await _read_back(call, sid)


@routes.route(
    "POST", BASE + "/{id}/resume", tags=TAG, role=Role.OPERATOR, response=Schedule, errors=(404,)
)
async def resume_schedule(call: ApiRequest[None, None]) -> Schedule:
    """Resume a schedule

    Shorthand for `isEnabled: true`: the next run is the next slot from now, and the
    consecutive-failure count starts again from zero.
    """
    sid = await _apply(call, {"is_enabled": True}, "schedules.resume")
    return await _read_back(call, sid)


@routes.route(
    "POST",
    BASE + "/{id}/run",
    tags=TAG,
    role=Role.OPERATOR,
    response=RunNow,
    status=202,
    errors=(404, 409, 503),
)
async def run_schedule(call: ApiRequest[None, None]) -> RunNow:
    """Run a schedule now

    Queues its job at once, whether or not the schedule is enabled and whatever its
    overlap policy (an explicit request); recorded in its history as a `manual` run.
    """
    sid = call.path("id")
    pool = call.app[PG]
    row = await fetch_visible(pool, call, "schedule", S["schedule_job"], sid)
    if row["template_id"] is None:
        await audit.record(call, "schedules.run", [sid], audit.Outcome.REFUSED)
        raise Conflict(f"schedule {sid!r} has no template (it was deleted); give it one first")
    job_id = manual_job_id(sid)
    now = datetime.now(UTC)
    try:
        await call.app[QUEUES].enqueue(scheduled_job(row, job_id), by=call.principal.sub)
    except (RedisError, OSError) as exc:
        raise Unavailable(f"could not queue the job: {exc.__class__.__name__}") from None
    enqueued_at = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        run = await conn.fetchrow(
            S["run_insert_manual"], sid, now, enqueued_at, job_id, call.principal.sub
        )
        await conn.execute(S["schedule_ran"], sid, enqueued_at, job_id)
    assert run is not None
    await audit.record(call, "schedules.run", [sid], audit.Outcome.OK, {"jobId": job_id})
    return RunNow(schedule_id=sid, job_id=job_id, run=run_model(run))


@routes.route(
    "GET", BASE + "/{id}/runs", tags=TAG, query=RunsQuery, response=RunPage, errors=(404,)
)
async def schedule_runs(call: ApiRequest[RunsQuery, None]) -> RunPage:
    """A schedule's run history

    Newest first: each slot fired, skipped or missed (ranges of missed slots as one row),
    with the reason, the fire lag and the job's status. Page with `cursor` = the
    previous page's `nextCursor`.
    """
    sid = call.path("id")
    await _fetch(call, sid)
    q = call.query
    before = int(q.cursor) if q.cursor else None
    outcome = str(q.outcome) if q.outcome else None
    rows = await call.app[PG].fetch(S["run_page"], sid, outcome, before, q.limit)
    next_cursor = str(rows[-1]["id"]) if len(rows) == q.limit else None
    return RunPage(schedule_id=sid, items=[run_model(r) for r in rows], next_cursor=next_cursor)
