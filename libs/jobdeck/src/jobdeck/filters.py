"""The job filters of search and export: one model, one validation, camelCase names.

``GET /api/v1/jobs/search`` reads them from the query string, ``POST /api/v1/jobs/export``
from its JSON body (``filters``), and the exporter re-reads the stored copy: all three go
through ``JobFilters``, so an export holds exactly what a search with the same filters
would show. ``jobdeck.jobsql`` turns them into SQL.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from jobdeck.events import JobStatus
from jobdeck.queues import MAX_PRIORITY, MIN_PRIORITY

QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}$"


class Model(BaseModel):
    """Public models: camelCase JSON names, snake_case Python names, unknown names refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=False
    )


# Instants outside this range are refused: Python cannot add a day to 9999-12-31, and a
# year-1 date with a positive offset is before year 1 in UTC, which Postgres rejects.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _instant(value: Any, end: bool) -> Any:
    """ISO 8601 date or date-time; naive means UTC. A date-only end bound covers its day."""
    if isinstance(value, datetime):
        parsed = value
        date_only = False
    elif isinstance(value, date):
        parsed, date_only = datetime(value.year, value.month, value.day), True
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                d = date.fromisoformat(text)
                parsed, date_only = datetime(d.year, d.month, d.day), True
            else:
                parsed = datetime.fromisoformat(text.replace("z", "Z"))
                date_only = False
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not an ISO 8601 date (2024-01-31) or date-time "
                "(2024-01-31T12:00:00Z)"
            ) from exc
    else:
        raise ValueError("must be an ISO 8601 date or date-time string")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise ValueError(f"{value!r} is out of range ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})")
    if end:
        parsed += timedelta(days=1) if date_only else timedelta(microseconds=1)
    return parsed


_DATE_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "description": "ISO 8601 date or date-time (naive means UTC)",
        "examples": ["2024-01-01", "2024-01-01T12:00:00Z"],
    }
)
StartInstant = Annotated[datetime, BeforeValidator(lambda v: _instant(v, False)), _DATE_SCHEMA]
EndInstant = Annotated[datetime, BeforeValidator(lambda v: _instant(v, True)), _DATE_SCHEMA]
QueueName = Annotated[str, Field(pattern=QUEUE_PATTERN, examples=["price-file-parser"])]
Priority = Annotated[int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)]


class SortField(StrEnum):
    CREATED_AT = "createdAt"
    STARTED_AT = "startedAt"
    FINISHED_AT = "finishedAt"
    DURATION = "duration"
    PRIORITY = "priority"
    STATUS = "status"
    NAME = "name"
    QUEUE = "queue"
    ATTEMPTS = "attempts"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class DateField(StrEnum):
    CREATED_AT = "createdAt"
    STARTED_AT = "startedAt"
    FINISHED_AT = "finishedAt"


def _date_field(value: Any) -> Any:
    if isinstance(value, str) and value in ("created", "started", "finished"):
        return value + "At"
    return value


class JobFilters(Model):
    """Which jobs: the filters of search and export (AND between filters, OR within a list)."""

    search: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="substring of the job name (case-insensitive), or an exact job id",
        examples=["price"],
    )
    status: list[JobStatus] | None = Field(
        default=None, max_length=6, description="any of these statuses (also `status[]`, or a,b)"
    )
    queues: list[QueueName] | None = Field(
        default=None, max_length=100, description="any of these queues (also `queues[]`, or a,b)"
    )
    start_date: StartInstant | None = None
    end_date: EndInstant | None = Field(
        default=None, description="inclusive; a date covers its whole day"
    )
    date_field: Annotated[DateField, BeforeValidator(_date_field)] = Field(
        default=DateField.CREATED_AT, description="which time startDate/endDate apply to"
    )
    min_duration: int | None = Field(default=None, ge=0, le=10**12, description="milliseconds")
    max_duration: int | None = Field(default=None, ge=0, le=10**12, description="milliseconds")
    priority: Priority | None = None
    min_priority: Priority | None = None
    max_priority: Priority | None = None

    @model_validator(mode="after")
    def _coherent_filters(self) -> JobFilters:
        if (
            self.min_duration is not None
            and self.max_duration is not None
            and self.min_duration > self.max_duration
        ):
            raise ValueError("minDuration: must not exceed maxDuration")
        if (
            self.min_priority is not None
            and self.max_priority is not None
            and self.min_priority > self.max_priority
        ):
            raise ValueError("minPriority: must not exceed maxPriority")
        if self.start_date and self.end_date and self.start_date >= self.end_date:
            raise ValueError("startDate: must be before endDate")
        return self

    @property
    def dated(self) -> bool:
        """Whether a startDate/endDate range limits ``date_field``."""
        return self.start_date is not None or self.end_date is not None


class JobSort(Model):
    """``sortBy`` / ``sortOrder``: one field or a comma list, one order for all or one each."""

    sort_by: str = Field(
        default="createdAt",
        max_length=200,
        description="a field or comma list of: " + ", ".join(f.value for f in SortField),
        examples=["duration", "status,createdAt"],
    )
    sort_order: str = Field(
        default="desc",
        max_length=100,
        description="asc or desc, one for all or one per sortBy field",
    )

    @model_validator(mode="after")
    def _valid_sort(self) -> JobSort:
        self.sort_keys()
        return self

    def sort_keys(self) -> list[tuple[SortField, SortOrder]]:
        """The validated sort: fields with one order each (stable tie-break added later)."""
        return list(parse_sort(self.sort_by, self.sort_order))


@functools.lru_cache(maxsize=512)
def parse_sort(sort_by: str, sort_order: str) -> tuple[tuple[SortField, SortOrder], ...]:
    """``sortBy``/``sortOrder`` as (field, order) pairs; ValueError says what is wrong.

    Cached: a dashboard sends the same few sorts over and over, and each request reads its
    sort twice (validation, then the query plan)."""
    names = [n.strip() for n in sort_by.split(",") if n.strip()]
    orders = [o.strip().lower() for o in sort_order.split(",") if o.strip()]
    if not names:
        raise ValueError("sortBy: must name at least one field")
    fields: list[SortField] = []
    for n in names:
        try:
            f = SortField(n)
        except ValueError:
            valid = ", ".join(f.value for f in SortField)
            raise ValueError(f"sortBy: {n!r} is not one of {valid}") from None
        if f in fields:
            raise ValueError(f"sortBy: {n!r} is listed twice")
        fields.append(f)
    if len(orders) not in (1, len(fields)):
        raise ValueError("sortOrder: give one order, or one per sortBy field")
    try:
        parsed = [SortOrder(o) for o in orders]
    except ValueError:
        raise ValueError("sortOrder: each must be asc or desc") from None
    if len(parsed) == 1:
        parsed = parsed * len(fields)
    return tuple(zip(fields, parsed, strict=True))
