"""Job filters and sorts as SQL: built only from whitelisted columns, every value bound.

Shared by the API's search (which adds paging, cursors and counts on top) and the
exporter (which streams every match through a server-side cursor), so that both select
exactly the same rows for the same filters and token.

NULL in a sort column (not started, not finished) counts as the lowest value: last when
descending, first when ascending. That is what one index per column (migration 0003)
serves in both directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobdeck.filters import DateField, JobFilters, JobSort, SortField, SortOrder

# (column, order, nullable, kind) of one sort key.
SortKey = tuple[str, SortOrder, bool, str]

# Public sort name -> (column, nullable, kind). Only these ever reach SQL.
SORT_COLUMNS: dict[SortField, tuple[str, bool, str]] = {
    SortField.CREATED_AT: ("created_at", False, "ts"),
    SortField.STARTED_AT: ("started_at", True, "ts"),
    SortField.FINISHED_AT: ("finished_at", True, "ts"),
    SortField.DURATION: ("duration_ms", True, "int"),
    SortField.PRIORITY: ("priority", False, "int"),
    SortField.STATUS: ("status", False, "text"),
    SortField.NAME: ("name", False, "text"),
    SortField.QUEUE: ("queue", False, "text"),
    SortField.ATTEMPTS: ("attempts", False, "int"),
}
DATE_COLUMNS = {
    DateField.CREATED_AT: "created_at",
    DateField.STARTED_AT: "started_at",
    DateField.FINISHED_AT: "finished_at",
}
SUMMARY_COLUMNS = (
    "id, queue, name, status, priority, progress, progress_message, attempts, max_attempts,"
    " created_at, run_at, started_at, finished_at, duration_ms, worker, error_type,"
    " error_message, cancelled_by, template_id, schedule_id"
)
DATA_COLUMNS = ", data, options, result"

# (column, public name) of a search item's fields, in the order of ``SUMMARY_COLUMNS``;
# the public names are ``JobSummary``'s JSON names.
SUMMARY_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "id"), ("queue", "queue"), ("name", "jobName"), ("status", "status"),
    ("priority", "priority"), ("progress", "progress"),
    ("progress_message", "progressMessage"), ("attempts", "attempts"),
    ("max_attempts", "maxAttempts"), ("created_at", "createdAt"), ("run_at", "runAt"),
    ("started_at", "startedAt"), ("finished_at", "finishedAt"), ("duration_ms", "duration"),
    ("worker", "worker"), ("error_type", "errorType"), ("error_message", "errorMessage"),
    ("cancelled_by", "cancelledBy"), ("template_id", "templateId"),
    ("schedule_id", "scheduleId"),
)  # fmt: skip
DATA_FIELDS: tuple[tuple[str, str], ...] = (
    ("data", "data"),
    ("options", "options"),
    ("result", "result"),
)


@dataclass
class Sql:
    """A WHERE clause and its bound arguments, grown one condition at a time."""

    conditions: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_term(search: str) -> str:
    """The term ``search`` matches: trimmed, unless it is all blanks."""
    return search.strip() or search


def one_of(sql: Sql, column: str, values: set[str]) -> str:
    """``column`` is one of ``values``. One value is an equality: an index leading with
    the column then returns its rows in the order of the next (``queue``, ``created_at``),
    which Postgres does not do for ``= ANY(array)`` (before 17), so "one queue, oldest
    first" would walk the whole creation-time index instead."""
    if len(values) == 1:
        return f"{column} = {sql.bind(next(iter(values)))}"
    return f"{column} = ANY({sql.bind(sorted(values))}::text[])"


def filter_jobs(sql: Sql, f: JobFilters, visible_queues: frozenset[str] | None) -> bool:
    """Add ``f``'s conditions, limited to the caller's queues, to ``sql``.

    Returns True when nothing can match because the caller may see none of the queues
    asked for (the caller answers "no rows" without asking Postgres)."""
    cond = sql.conditions
    empty = False
    queues: set[str] | None = set(f.queues) if f.queues else None
    if visible_queues is not None:
        queues = set(visible_queues) if queues is None else queues & visible_queues
        empty = not queues
    if queues is not None:
        cond.append(one_of(sql, "queue", queues))
    if f.status:
        cond.append(one_of(sql, "status", {s.value for s in f.status}))
    if f.search:
        term = search_term(f.search)
        cond.append(f"(name ILIKE {sql.bind(like_pattern(term))} OR id = {sql.bind(term)})")
    date_col = DATE_COLUMNS[f.date_field]
    if f.start_date is not None:
        cond.append(f"{date_col} >= {sql.bind(f.start_date)}")
    if f.end_date is not None:
        cond.append(f"{date_col} < {sql.bind(f.end_date)}")
    if f.min_duration is not None:
        cond.append(f"duration_ms >= {sql.bind(f.min_duration)}")
    if f.max_duration is not None:
        cond.append(f"duration_ms <= {sql.bind(f.max_duration)}")
    if f.priority is not None:
        cond.append(f"priority = {sql.bind(f.priority)}")
    if f.min_priority is not None:
        cond.append(f"priority >= {sql.bind(f.min_priority)}")
    if f.max_priority is not None:
        cond.append(f"priority <= {sql.bind(f.max_priority)}")
    return empty


def sort_spec(q: JobSort) -> list[SortKey]:
    """(column, order, nullable, kind) per sort key, from the whitelist only."""
    spec = []
    for f, order in q.sort_keys():
        column, nullable, kind = SORT_COLUMNS[f]
        spec.append((column, order, nullable, kind))
    return spec


def order_by(sort: Sequence[SortKey]) -> str:
    parts = []
    for column, order, nullable, _ in sort:
        if order is SortOrder.ASC:
            parts.append(f"{column} ASC" + (" NULLS FIRST" if nullable else ""))
        else:
            parts.append(f"{column} DESC" + (" NULLS LAST" if nullable else ""))
    tie = "ASC" if sort[-1][1] is SortOrder.ASC else "DESC"
    parts.append(f"id {tie}")
    return " ORDER BY " + ", ".join(parts)
