"""Request and response models of the export endpoints (``exports_api.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobdeck.exports import DATA_COLUMN_OF, EXPORT_FIELDS, ExportFormat, ExportStatus
from jobdeck.filters import JobFilters, JobSort, Model
from pydantic import Field, field_validator, model_validator

from jobdeck_api.models import MAX_LIMIT

FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$"


class ExportRequest(JobSort):
    """``POST /api/v1/jobs/export``: which jobs (the search filters), which fields, which format."""

    format: ExportFormat = Field(description="csv, json, ndjson or excel (.xlsx)")
    filters: JobFilters = Field(
        default_factory=JobFilters,
        description="the filters of GET /api/v1/jobs/search, same names and rules",
    )
    fields: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=len(EXPORT_FIELDS),
        description="search item fields, in this order; default: every summary field. "
        "One of: " + ", ".join(EXPORT_FIELDS),
        examples=[["id", "jobName", "status", "duration", "createdAt"]],
    )
    include_data: bool = Field(default=False, description="add the job data, options and result")
    include_logs: bool = Field(
        default=False,
        description="add each job's log lines (a Logs sheet in Excel; a `logs` JSON array "
        "per job in CSV, JSON and NDJSON)",
    )
    filename: str | None = Field(
        default=None,
        pattern=FILENAME_PATTERN,
        description="download name without extension (letters, digits, . _ - and spaces)",
    )

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: list[str] | None) -> list[str] | None:
        if fields is None:
            return None
        unknown = [f for f in fields if f not in EXPORT_FIELDS]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} not a search item field"
                f" (one of {', '.join(EXPORT_FIELDS)})"
            )
        if len(set(fields)) != len(fields):
            raise ValueError("a field is listed twice")
        return fields

    @model_validator(mode="after")
    def _data_fields(self) -> ExportRequest:
        if self.fields is None:
            return self
        needs_data = [f for f in self.fields if f in DATA_COLUMN_OF]
        if needs_data and not self.include_data:
            raise ValueError(f"fields: {', '.join(needs_data)} need includeData: true")
        return self


class ExportInfo(Model):
    id: str
    status: ExportStatus
    format: ExportFormat
    filename: str
    url: str | None = Field(default=None, description="download URL, once done; expires")
    status_url: str = Field(description="GET this for status and progress")
    rows: int = Field(description="rows written so far (all of them once done)")
    rows_estimated: int | None = Field(default=None, description="rows the export will hold")
    progress: float | None = Field(default=None, description="0..1, rows / rowsEstimated")
    bytes: int | None = None
    error: str | None = None
    requested_by: str
    filters: dict[str, Any]
    fields: list[str] | None = None
    include_data: bool
    include_logs: bool
    sort_by: str
    sort_order: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None


class ExportList(Model):
    items: list[ExportInfo]


class ExportListQuery(Model):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    status: ExportStatus | None = None
