"""Models of the commands on jobs: enqueue (one or many), and retry, cancel, delete,
promote and change priority with their per-job results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from jobdeck.events import JobStatus
from pydantic import AfterValidator, Field, model_validator

from jobdeck_api.models import Model, Priority, QueueName, Seconds, StartInstant

MAX_BULK_IDS = 1000
MAX_BULK_ENQUEUE = 1000
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
# Ids that name a static route under /api/v1/jobs/ (today's and the planned ones): a job
# with one of them could never be fetched by id.
SHADOWED_IDS = frozenset(
    {"search", "queues", "bulk", "templates", "schedules", "export", "exports", "analytics"}
    | {"workers", "system", "audit", "stats", "docs"}
)


def _not_shadowed(job_id: str | None) -> str | None:
    if job_id is not None and job_id.casefold() in SHADOWED_IDS:
        raise ValueError(
            f"{job_id!r} is reserved (a route under /api/v1/jobs/ has that name); choose another id"
        )
    return job_id


MAX_DELAY_MS = 366 * 86_400_000


class EnqueueRequest(Model):
    """A job to queue: queue and name, or a template id (its fields as defaults)."""

    queue: QueueName | None = None
    name: str | None = Field(
        default=None, min_length=1, max_length=200, examples=["price-file-parser"]
    )
    template_id: str | None = Field(default=None, min_length=1, max_length=200)
    job_id: Annotated[str | None, AfterValidator(_not_shadowed)] = Field(
        default=None,
        pattern=JOB_ID_PATTERN,
        description="defaults to a new id; not one of the reserved route names "
        + ", ".join(sorted(SHADOWED_IDS)),
    )
    data: Any = Field(default=None, examples=[{"path": "/data/prices.csv"}])
    priority: Priority | None = None
    delay_ms: int | None = Field(default=None, ge=0, le=MAX_DELAY_MS)
    run_at: StartInstant | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff_ms: int | None = Field(default=None, ge=0, le=86_400_000)
    timeout_s: Seconds | None = None

    @model_validator(mode="after")
    def _target(self) -> EnqueueRequest:
        if self.template_id is None and (self.queue is None or self.name is None):
            raise ValueError("queue and name are required unless templateId is given")
        if self.delay_ms is not None and self.run_at is not None:
            raise ValueError("delayMs and runAt: give one of them, not both")
        if self.run_at is not None and self.run_at > datetime.now(UTC) + timedelta(
            milliseconds=MAX_DELAY_MS
        ):
            raise ValueError("runAt: at most 366 days ahead (as for delayMs)")
        return self


class EnqueuedJob(Model):
    id: str
    queue: str
    job_name: str
    status: JobStatus
    priority: int
    max_attempts: int
    run_at: datetime | None = None
    created_at: datetime


class BulkEnqueueRequest(Model):
    jobs: list[EnqueueRequest] = Field(min_length=1, max_length=MAX_BULK_ENQUEUE)


class BulkEnqueueItem(Model):
    index: int
    id: str
    outcome: Literal["queued", "duplicate"]
    status: JobStatus | None = None


class BulkEnqueueResponse(Model):
    items: list[BulkEnqueueItem]
    counts: dict[str, int]


class JobOutcome(StrEnum):
    RETRIED = "retried"
    CANCELLED = "cancelled"
    CANCELLING = "cancelling"
    REMOVED = "removed"
    PROMOTED = "promoted"
    REPRIORITIZED = "reprioritized"
    SKIPPED = "skipped"
    NOT_FOUND = "not_found"


class JobActionResult(Model):
    id: str
    outcome: JobOutcome
    reason: str | None = None
    previous_status: JobStatus | None = None
    status: JobStatus | None = Field(
        default=None, description="the state the job is expected to reach"
    )


class BulkActionResponse(Model):
    results: list[JobActionResult]
    counts: dict[str, int]
    total: int


class PriorityRequest(Model):
    priority: Priority
