"""What an export's Summary sheet says: who, when, which filters, and counts of the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Summary:
    export_id: str
    requested_by: str
    generated_at: datetime
    format: str
    filters: dict[str, Any]
    fields: list[str]
    sort: str
    rows: int = 0
    log_lines: int = 0
    by_status: list[tuple[str, int]] = field(default_factory=list)
    by_queue: list[tuple[str, int]] = field(default_factory=list)
    # min, mean, p50, p95, max of duration_ms over the rows that have one; None if none do
    durations: dict[str, float | None] = field(default_factory=dict)
