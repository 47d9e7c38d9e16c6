"""Cron preview: what a schedule would do, before it is saved.

The dashboard's schedule form shows the plain-English description and the next fire times
in the chosen zone while the operator types, and the same validation (a 422 naming the
field) that creating the schedule would give. Nothing is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jobdeck.cron import CronError, parse
from pydantic import Field

from jobdeck_api.errors import BadParameter
from jobdeck_api.models import Model
from jobdeck_api.routing import ApiRequest, ApiRoutes
from jobdeck_api.schedule_models import MAX_PREVIEW, FireTime
from jobdeck_api.schedules_api import BASE, TAG, _fire_time

routes = ApiRoutes()


class CronPreviewQuery(Model):
    cron_expression: str = Field(min_length=1, max_length=200, examples=["0 2 * * *"])
    timezone: str = Field(default="UTC", max_length=100, examples=["America/New_York"])
    count: int = Field(default=5, ge=1, le=MAX_PREVIEW, description=f"at most {MAX_PREVIEW}")


class CronPreview(Model):
    cron_expression: str
    timezone: str
    description: str = Field(description="the expression in plain English")
    next_runs: list[FireTime] = Field(description="the next fire times after now")


@routes.route(
    "GET",
    BASE + "/preview",
    tags=TAG,
    query=CronPreviewQuery,
    response=CronPreview,
    errors=(422,),
)
async def cron_preview(call: ApiRequest[CronPreviewQuery, None]) -> CronPreview:
    """Preview a cron expression

    Validates `cronExpression` in `timezone` exactly as creating a schedule does (a 422
    naming the field and the reason) and answers its plain-English description and its
    next `count` fire times, in UTC and in the zone. Nothing is stored.
    """
    q = call.query
    try:
        cron = parse(q.cron_expression, q.timezone)
    except CronError as exc:
        raise BadParameter(
            f"{exc.field}: {exc.reason}", [{"in": "query", "name": exc.field, "reason": exc.reason}]
        ) from None
    runs = cron.preview(datetime.now(UTC), q.count)
    return CronPreview(
        cron_expression=cron.expression,
        timezone=cron.timezone,
        description=cron.describe(),
        next_runs=[_fire_time(at, cron) for at in runs],
    )
