"""Models of the audit log: its query, entries and pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from jobdeck_api.models import MAX_LIMIT, EndInstant, Model, StartInstant


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
