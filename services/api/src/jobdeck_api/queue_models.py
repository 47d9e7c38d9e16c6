"""Models of queues: their state and counts, their config (concurrency, retries, alerts,
retention), and the admin commands clean and drain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from jobdeck.events import JobStatus
from pydantic import AfterValidator, Field

from jobdeck_api.models import Model, Seconds

Rate = Annotated[float, Field(ge=0, le=1), AfterValidator(lambda v: round(v, 6))]


class QueueConfigInput(Model):
    concurrency: int = Field(default=10, ge=1, le=10_000)
    timeout_s: Seconds = 300.0
    max_attempts: int = Field(default=3, ge=1, le=100)
    backoff_ms: int = Field(default=1000, ge=0, le=86_400_000)
    alert_failure_rate: Rate | None = None
    alert_failure_window_s: int = Field(default=300, ge=1, le=30 * 86_400)
    alert_waiting_backlog: int | None = Field(default=None, ge=0, le=10**9)
    alert_oldest_waiting_s: int | None = Field(default=None, ge=0, le=10**9)
    description: str | None = Field(default=None, max_length=2000)
    keep_completed_days: int | None = Field(
        default=None,
        ge=0,
        le=36_500,
        description="days completed jobs are kept (null: the recorder's default, 30; 0: forever)",
    )
    keep_failed_days: int | None = Field(
        default=None,
        ge=0,
        le=36_500,
        description="days failed and cancelled jobs are kept (null: the default, 90; 0: forever)",
    )
    keep_logs_days: int | None = Field(
        default=None,
        ge=0,
        le=36_500,
        description="days the log lines of finished jobs are kept (null: the default, 30; 0:"
        " forever)",
    )


class QueueConfig(QueueConfigInput):
    queue: str
    updated_by: str | None = None
    created_at: datetime
    updated_at: datetime


class ScheduleBrief(Model):
    id: str
    name: str
    cron_expression: str
    timezone: str
    is_enabled: bool
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None


class QueueCounts(Model):
    waiting: int = 0
    delayed: int = 0
    active: int = 0
    queued_in_redis: int = 0


class QueueInfo(Model):
    name: str
    paused: bool
    paused_by: str | None = None
    paused_at: datetime | None = None
    counts: QueueCounts
    workers: int
    config: QueueConfig | None = None
    schedules: list[ScheduleBrief]


class QueueList(Model):
    items: list[QueueInfo]


class QueueState(Model):
    queue: str
    paused: bool


FINAL_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
MAX_DELETE_BATCH = 10_000  # jobs a clean deletes per call at most


def _final_only(value: list[JobStatus] | None) -> list[JobStatus] | None:
    for status in value or ():
        if status not in FINAL_STATUSES:
            raise ValueError(
                f"{status.value!r}: only completed, failed or cancelled jobs are deleted"
                " (cancel a queued or running job first)"
            )
    return value


FinalStatuses = Annotated[
    list[JobStatus] | None, Field(default=None, max_length=3), AfterValidator(_final_only)
]


class CleanRequest(Model):
    older_than_s: int = Field(
        ge=0, le=20 * 366 * 86_400, description="finished at least this many seconds ago"
    )
    status: FinalStatuses = None
    dry_run: bool = True
    limit: int = Field(default=1_000, ge=1, le=MAX_DELETE_BATCH)


class DrainRequest(Model):
    delayed: bool = Field(default=False, description="also remove delayed jobs")
    dry_run: bool = False


class DrainResult(Model):
    queue: str
    waiting: int = Field(description="waiting jobs before the drain")
    delayed: int = Field(description="delayed jobs before the drain")
    drained: int
    dry_run: bool
