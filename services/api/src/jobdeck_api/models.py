"""Request and response models: the one source of validation and of the OpenAPI schemas.

JSON names are camelCase (``jobName``, ``createdAt``) as in the seed; Python names stay
snake_case. Query models describe the query string; list fields accept repeated,
``name[]`` and comma-separated forms (see ``routing.raw_query``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from jobdeck.events import JobStatus

# The shared filter types, also re-exported here for the API's other model modules.
from jobdeck.filters import EndInstant as EndInstant
from jobdeck.filters import JobFilters, JobSort
from jobdeck.filters import Model as Model
from jobdeck.filters import Priority as Priority
from jobdeck.filters import QueueName as QueueName
from jobdeck.filters import StartInstant as StartInstant
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

DEFAULT_LIMIT = 20
MAX_LIMIT = 200
MAX_BULK_IDS = 1000
MAX_BULK_ENQUEUE = 1000
# Deeper pages are refused: OFFSET reads and drops every row before the page, so page 5,000
# costs 5,000 pages of work; a cursor (keyset) page costs one page at any depth.
MAX_OFFSET = 10_000
# exactTotal counts at most this many matches by default (a larger planner estimate is
# refused up front); the API's ``CostLimits.exact_total_max`` sets it.
EXACT_TOTAL_MAX = 100_000
# A substring shorter than a trigram cannot use the name index: it would read every job.
MIN_SUBSTRING = 3
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

# Postgres ``real`` columns underflow on denormal floats: keep sane precision.
Seconds = Annotated[float, Field(ge=0.001, le=7 * 86_400), AfterValidator(lambda v: round(v, 3))]
Rate = Annotated[float, Field(ge=0, le=1), AfterValidator(lambda v: round(v, 6))]
JobId = Annotated[str, Field(min_length=1, max_length=256)]


class SearchQuery(JobFilters, JobSort):
    """Query string of ``GET /api/v1/jobs/search``: the job filters, sort and paging."""

    page: int | None = Field(
        default=None,
        ge=1,
        json_schema_extra={"maximum": MAX_OFFSET + 1},
        description=f"1-based page number; (page - 1) * limit at most {MAX_OFFSET:,}"
        " (deeper: follow nextCursor)",
    )
    offset: int | None = Field(
        default=None,
        ge=0,
        json_schema_extra={"maximum": MAX_OFFSET},
        description=f"rows to skip, at most {MAX_OFFSET:,} (deeper: follow nextCursor)",
    )
    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"at most {MAX_LIMIT}"
    )
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`nextCursor` of the previous page",
    )
    include_data: bool = Field(default=False, description="include job data, options and result")
    exact_total: bool = Field(
        default=False,
        description=f"count every match exactly, up to {EXACT_TOTAL_MAX:,} (a larger match is"
        " refused with a 422: narrow the filters)",
    )

    @model_validator(mode="after")
    def _coherent(self) -> SearchQuery:
        if self.page is not None and self.offset is not None:
            raise ValueError("page and offset: give one of them, not both")
        if self.cursor is not None and (self.page is not None or self.offset is not None):
            raise ValueError("cursor: cannot be combined with page or offset")
        if self.offset is not None and self.offset > MAX_OFFSET:
            raise ValueError(
                f"offset: rows past {MAX_OFFSET:,} are not served by offset; follow nextCursor"
                " (as cursor), which stays fast at any depth"
            )
        if self.page is not None and (self.page - 1) * self.limit > MAX_OFFSET:
            raise ValueError(
                f"page: pages past row {MAX_OFFSET:,} are not served (page {self.page} of"
                f" {self.limit} skips {(self.page - 1) * self.limit:,} rows); follow nextCursor"
                " (as cursor), which stays fast at any depth"
            )
        if self.search is not None and len(self.search.strip()) < MIN_SUBSTRING:
            raise ValueError(
                f"search: give at least {MIN_SUBSTRING} characters (a shorter substring cannot"
                " use the name index and would read every job); narrow with queues, status"
                " or dates meanwhile"
            )
        return self


class JobSummary(Model):
    id: str
    queue: str
    job_name: str = Field(examples=["price-file-parser"])
    status: JobStatus
    priority: int
    progress: float
    progress_message: str | None = None
    attempts: int
    max_attempts: int
    created_at: datetime
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: int | None = Field(default=None, description="milliseconds")
    worker: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    cancelled_by: str | None = None
    template_id: str | None = None
    schedule_id: str | None = None
    data: Any = Field(default=None, description="only with includeData=true")
    options: dict[str, Any] | None = Field(default=None, description="only with includeData=true")
    result: Any = Field(default=None, description="only with includeData=true")


class SearchResponse(Model):
    items: list[JobSummary]
    total: int = Field(description="matches; exact unless totalExact is false")
    total_exact: bool
    page: int | None = None
    offset: int
    limit: int
    next_cursor: str | None = Field(default=None, description="pass as cursor for the next page")


class AttemptSummary(Model):
    """One attempt: who ran it, when, how it ended (``outcome``: running, completed,
    failed, retrying, cancelled; ``errorType`` WorkerShutdown = handed back by a stopping
    worker, LeaseExpired = its worker died or stalled), and its log lines."""

    attempt: int
    log_lines: int
    first_log_at: datetime | None = None
    last_log_at: datetime | None = None
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = Field(default=None, description="null: recorded before history")
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None


class JobTiming(Model):
    created_at: datetime
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    wait_ms: int | None = Field(default=None, description="from creation (or run-at) to last start")
    duration_ms: int | None = None


class JobDetail(JobSummary):
    error_traceback: str | None = None
    updated_at: datetime
    attempts_left: int
    timing: JobTiming
    attempt_history: list[AttemptSummary]


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogsQuery(Model):
    attempt: int | None = Field(default=None, ge=1, le=1_000_000)
    level: LogLevel | None = Field(default=None, description="this level and above")
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class LogLine(Model):
    attempt: int
    seq: int
    ts: datetime
    level: str
    message: str


class LogsPage(Model):
    job_id: str
    items: list[LogLine]
    total: int
    limit: int
    offset: int


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


class AuditQuery(Model):
    actor: str | None = Field(default=None, max_length=200)
    action: str | None = Field(default=None, max_length=100)
    outcome: str | None = Field(default=None, max_length=50)
    since: StartInstant | None = None
    until: EndInstant | None = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=18, pattern=r"^[0-9]+$")


class AuditEntry(Model):
    id: int
    at: datetime
    actor: str
    roles: list[str]
    action: str
    targets: list[Any]
    outcome: str
    detail: Any = None
    request_id: str | None = None
    scope: list[str] | None = Field(
        default=None, description="the caller's queues (['*'] for all); null on older rows"
    )


class AuditPage(Model):
    items: list[AuditEntry]
    next_cursor: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = Field(default=None, alias="request_id")
    errors: list[dict[str, str]] | None = None


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


class PriorityRequest(Model):
    priority: Priority
