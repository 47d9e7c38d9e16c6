"""Request and response models of the template and schedule endpoints (camelCase JSON).

Cron expressions and time zones are checked by ``jobdeck.cron`` in the handlers (they
are validated together), everything else here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobdeck.schedules import CatchUp as CatchUpPolicy
from jobdeck.schedules import Overlap as OverlapPolicy
from jobdeck.schedules import RunOutcome
from pydantic import Field

from jobdeck_api.models import DEFAULT_LIMIT, MAX_LIMIT, Model, Priority, QueueName, Seconds

MAX_PREVIEW = 50


class TemplateInput(Model):
    """A job template: the job a schedule (or ``POST /api/v1/jobs`` with templateId) queues."""

    name: str = Field(min_length=1, max_length=200, examples=["price-update"])
    description: str | None = Field(default=None, max_length=2000)
    queue: QueueName
    job_name: str = Field(
        min_length=1, max_length=200, description="the task to run", examples=["price-file-parser"]
    )
    data: Any = Field(default=None, description="default job data; a run's data object is "
                      "merged over it key by key", examples=[{"path": "prices.csv"}])  # fmt: skip
    priority: Priority = 0
    max_attempts: int = Field(default=3, ge=1, le=100)
    timeout_s: Seconds = 300.0
    backoff_ms: int = Field(default=1000, ge=0, le=86_400_000)


class Template(TemplateInput):
    id: str
    schedules: int = Field(description="schedules using this template")
    created_by: str | None = None
    updated_by: str | None = None
    created_at: datetime
    updated_at: datetime


class TemplateQuery(Model):
    queue: QueueName | None = None
    name: str | None = Field(default=None, max_length=200, description="substring of the name")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class TemplatePage(Model):
    items: list[Template]
    total: int
    limit: int
    offset: int


class DeleteQuery(Model):
    force: bool = Field(
        default=False, description="also disable (and detach) the schedules that use it"
    )


class Deleted(Model):
    id: str
    deleted: bool
    disabled_schedules: list[str] = Field(default_factory=list)


_POLICY_DOC = {
    "overlap_policy": "skip (default): no new run while the previous one waits or runs; "
    "allow; queue_one: at most one waiting behind the running one",
    "catch_up_policy": "after the scheduler was down: skip; once (default): one run for "
    "the missed slots; all: every missed slot (up to catchUpLimit)",
}


class ScheduleFields(Model):
    """Fields of a schedule that both create and update take."""

    description: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = Field(default=None, description="overrides the template's")
    data: Any = Field(default=None, description="merged over the template's data object")
    overlap_policy: OverlapPolicy = Field(
        default=OverlapPolicy.SKIP, description=_POLICY_DOC["overlap_policy"]
    )
    catch_up_policy: CatchUpPolicy = Field(
        default=CatchUpPolicy.ONCE, description=_POLICY_DOC["catch_up_policy"]
    )
    catch_up_window_s: int = Field(
        default=900, ge=0, le=86_400, description="missed slots older than this are not run"
    )
    catch_up_limit: int = Field(default=100, ge=1, le=1000)
    jitter_s: int = Field(
        default=0, ge=0, le=86_400, description="random delay per run, never past the next slot"
    )
    max_consecutive_failures: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="disable after this many failed runs in a row; 0 never",
    )


class ScheduleInput(ScheduleFields):
    """The seed's body ``{name, description, templateId, cronExpression, timezone, priority,
    isEnabled}``, plus the policies."""

    name: str = Field(min_length=1, max_length=200, examples=["Daily Analytics Refresh"])
    template_id: str = Field(
        min_length=1, max_length=200, description="a template's id, or its unique name"
    )
    cron_expression: str = Field(
        min_length=1,
        max_length=200,
        description="5 fields, 6 with a leading seconds field, or @hourly/@daily/...",
        examples=["0 2 * * *"],
    )
    timezone: str = Field(default="UTC", max_length=100, examples=["America/New_York"])
    is_enabled: bool = True


class ScheduleUpdate(Model):
    """Fields to change; those left out keep their values."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    template_id: str | None = Field(default=None, min_length=1, max_length=200)
    cron_expression: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=100)
    is_enabled: bool | None = None
    description: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = None
    data: Any = None
    overlap_policy: OverlapPolicy | None = None
    catch_up_policy: CatchUpPolicy | None = None
    catch_up_window_s: int | None = Field(default=None, ge=0, le=86_400)
    catch_up_limit: int | None = Field(default=None, ge=1, le=1000)
    jitter_s: int | None = Field(default=None, ge=0, le=86_400)
    max_consecutive_failures: int | None = Field(default=None, ge=0, le=1000)


class FireTime(Model):
    at: datetime = Field(description="UTC")
    local: str = Field(description="the same instant in the schedule's zone, ISO 8601")


class RunCounters(Model):
    fired: int
    skipped: int
    missed: int
    failed_to_enqueue: int


class Schedule(Model):
    id: str
    name: str
    description: str | None = None
    template_id: str | None
    template_name: str | None = None
    queue: str | None = None
    job_name: str | None = None
    cron_expression: str
    cron_description: str = Field(description="the expression in plain English")
    timezone: str
    priority: int | None = None
    data: Any = None
    is_enabled: bool
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    overlap_policy: OverlapPolicy
    catch_up_policy: CatchUpPolicy
    catch_up_window_s: int
    catch_up_limit: int
    jitter_s: int
    max_consecutive_failures: int
    consecutive_failures: int
    next_run_at: datetime | None = Field(default=None, description="UTC; null while disabled")
    next_run_at_local: str | None = Field(default=None, description="in the schedule's zone")
    next_runs: list[FireTime] = Field(description="the next fire times (?preview=N, default 5)")
    last_run_at: datetime | None = None
    last_job_id: str | None = None
    last_status: str | None = Field(
        default=None, description="status of the last run's job, as the recorder saw it"
    )
    last_error: str | None = None
    runs: RunCounters
    created_by: str | None = None
    updated_by: str | None = None
    created_at: datetime
    updated_at: datetime


class ScheduleQuery(Model):
    enabled: bool | None = None
    queue: QueueName | None = None
    template_id: str | None = Field(default=None, max_length=200)
    preview: int = Field(default=5, ge=0, le=MAX_PREVIEW, description=f"at most {MAX_PREVIEW}")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class PreviewQuery(Model):
    preview: int = Field(default=5, ge=0, le=MAX_PREVIEW, description=f"at most {MAX_PREVIEW}")


class SchedulePage(Model):
    items: list[Schedule]
    total: int
    limit: int
    offset: int


class RunsQuery(Model):
    outcome: RunOutcome | None = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=18, pattern=r"^[0-9]+$")


class ScheduleRun(Model):
    id: int
    scheduled_at: datetime
    last_slot_at: datetime | None = Field(default=None, description="a range of missed slots")
    slot_count: int
    trigger: str = Field(description="cron, catch_up or manual")
    outcome: RunOutcome
    reason: str | None = None
    enqueued_at: datetime | None = None
    lag_ms: int | None = Field(default=None, description="enqueued_at minus scheduled_at")
    job_id: str | None = None
    job_status: str | None = Field(default=None, description="the job's status (final once done)")
    recorded_at: datetime


class RunPage(Model):
    schedule_id: str
    items: list[ScheduleRun]
    next_cursor: str | None = None


class RunNow(Model):
    schedule_id: str
    job_id: str
    run: ScheduleRun
