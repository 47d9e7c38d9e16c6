"""Job template endpoints (``/api/v1/jobs/templates``): the jobs that schedules queue.

Admins create, change and delete templates; anyone may read those of their queues. A
template used by schedules is deleted only with ``?force=true``, which disables those
schedules and detaches them (recorded in the audit log), so nothing fires half-defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from jobdeck.auth import Role
from jobdeck.sql import load_queries
from jobdeck.web import PG

from jobdeck_api import audit
from jobdeck_api.errors import Conflict, Forbidden, NotFound
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.schedule_models import (
    Deleted,
    DeleteQuery,
    Template,
    TemplateInput,
    TemplatePage,
    TemplateQuery,
)
from jobdeck_api.scoped_rows import fetch_page, fetch_visible

S = load_queries("jobdeck_api", "sql/schedules.sql")
routes = ApiRoutes()
TAG = ["templates"]
BASE = "/api/v1/jobs/templates"
EXAMPLE = {
    "name": "price-update",
    "description": "Parse the latest price file",
    "queue": "price-file-parser",
    "jobName": "price-file-parser",
    "data": {"path": "prices.csv"},
    "priority": 5,
    "maxAttempts": 3,
    "timeoutS": 300,
    "backoffMs": 1000,
}


def template_model(row: Mapping[str, Any]) -> Template:
    return Template(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        queue=row["queue"],
        job_name=row["task"],
        data=row["data"],
        priority=row["priority"],
        max_attempts=row["max_attempts"],
        timeout_s=round(float(row["timeout_s"]), 3),
        backoff_ms=row["backoff_ms"],
        schedules=row["schedules"],
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _check_queue(call: ApiRequest[Any, Any], queue: str) -> None:
    if not call.principal.can_see(queue):
        raise Forbidden(f"queue {queue!r} is outside the queues of your token")


async def _visible(call: ApiRequest[Any, Any], conn: Any = None) -> Mapping[str, Any]:
    db = conn or call.app[PG]
    return await fetch_visible(db, call, "template", S["template_get"], call.path("id"))


def _duplicate(name: str) -> Conflict:
    return Conflict(f"a template named {name!r} already exists")


@routes.route("GET", BASE, tags=TAG, query=TemplateQuery, response=TemplatePage)
async def list_templates(call: ApiRequest[TemplateQuery, None]) -> TemplatePage:
    """List job templates

    Those of the caller's queues, by name; filter by `queue` and `name` (substring).
    """
    q = call.query
    filters = (q.queue, q.name)
    return await fetch_page(call, S["template_list"], filters, TemplatePage, template_model)


@routes.route("GET", BASE + "/{id}", tags=TAG, response=Template, errors=(404,))
async def get_template(call: ApiRequest[None, None]) -> Template:
    """Get a job template"""
    return template_model(await _visible(call))


@routes.route(
    "POST",
    BASE,
    tags=TAG,
    role=Role.ADMIN,
    body=TemplateInput,
    response=Template,
    status=201,
    errors=(403, 409),
    body_example=EXAMPLE,
)
async def create_template(call: ApiRequest[None, TemplateInput]) -> Template:
    """Create a job template

    `name` is unique; schedules may refer to the template by its id or its name.
    """
    b = call.body
    _check_queue(call, b.queue)
    try:
        row = await call.app[PG].fetchrow(
            S["template_insert"], b.name, b.description, b.queue, b.job_name, b.data,
            b.priority, b.max_attempts, b.timeout_s, b.backoff_ms, call.principal.sub,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        await audit.record(call, "templates.create", [b.name], audit.Outcome.REFUSED)
        raise _duplicate(b.name) from None
    assert row is not None
    await audit.record(
        call, "templates.create", [row["id"]], audit.Outcome.OK, b.model_dump(by_alias=True)
    )
    return template_model(row)


@routes.route(
    "PUT",
    BASE + "/{id}",
    tags=TAG,
    role=Role.ADMIN,
    body=TemplateInput,
    response=Template,
    errors=(403, 404, 409),
    body_example=EXAMPLE,
)
async def update_template(call: ApiRequest[None, TemplateInput]) -> Template:
    """Replace a job template

    Its schedules' next runs use the new fields.
    """
    b = call.body
    await _visible(call)
    _check_queue(call, b.queue)
    try:
        row = await call.app[PG].fetchrow(
            S["template_update"], call.path("id"), b.name, b.description, b.queue, b.job_name,
            b.data, b.priority, b.max_attempts, b.timeout_s, b.backoff_ms, call.principal.sub,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        await audit.record(call, "templates.update", [call.path("id")], audit.Outcome.REFUSED)
        raise _duplicate(b.name) from None
    if row is None:
        raise NotFound(f"template {call.path('id')!r} not found")
    await audit.record(
        call, "templates.update", [row["id"]], audit.Outcome.OK, b.model_dump(by_alias=True)
    )
    return template_model(row)


@routes.route(
    "DELETE",
    BASE + "/{id}",
    tags=TAG,
    role=Role.ADMIN,
    query=DeleteQuery,
    response=Deleted,
    errors=(404, 409),
)
async def delete_template(call: ApiRequest[DeleteQuery, None]) -> Deleted:
    """Delete a job template

    Refused (409) while schedules use it, unless `force=true`: then those schedules are
    disabled and detached from it (they cannot be enabled until given a template).
    """
    tid = call.path("id")
    async with call.app[PG].acquire() as conn, conn.transaction():
        await _visible(call, conn)
        users = [r["id"] for r in await conn.fetch(S["template_schedules"], tid)]
        if users and not call.query.force:
            await audit.record(call, "templates.delete", [tid], audit.Outcome.REFUSED)
            raise Conflict(
                f"template {tid!r} is used by {len(users)} schedule(s): "
                f"{', '.join(users[:10])}; pass force=true to disable them and delete it",
                schedules=users,
            )
        if users:
            reason = f"its template {tid!r} was deleted by {call.principal.sub}"
            await conn.execute(S["schedules_detach"], tid, reason, call.principal.sub)
        await conn.execute(S["template_delete"], tid)
    await audit.record(
        call, "templates.delete", [tid], audit.Outcome.OK, {"disabledSchedules": users}
    )
    return Deleted(id=tid, deleted=True, disabled_schedules=users)
