"""Models of the read side of jobs: the search (query, summaries, page), one job's detail
with its attempts, and its log lines."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from jobdeck.events import JobStatus
from jobdeck.filters import JobFilters, JobSort
from pydantic import Field, model_validator

from jobdeck_api.models import DEFAULT_LIMIT, MAX_LIMIT, Model

# Deeper pages are refused: OFFSET reads and drops every row before the page, so page 5,000
# costs 5,000 pages of work; a cursor (keyset) page costs one page at any depth.
MAX_OFFSET = 10_000
# exactTotal counts at most this many matches by default (a larger planner estimate is
# refused up front); the API's ``CostLimits.exact_total_max`` sets it.
EXACT_TOTAL_MAX = 100_000
# A substring shorter than a trigram cannot use the name index: it would read every job.
MIN_SUBSTRING = 3


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
