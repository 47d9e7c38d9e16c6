"""An export's rows, read from one Postgres snapshot with ``COPY (SELECT ...) TO STDOUT``.

The whole export (count, rows, logs, summary figures) reads one REPEATABLE READ, READ ONLY
transaction: it holds exactly what a search with the same filters and token showed when
the export started, whatever the recorder writes meanwhile. The WHERE clause and ORDER BY
are the search's own (``jobdeck.jobsql``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from jobdeck.exports import ExportFormat
from jobdeck.filters import JobFilters, JobSort
from jobdeck.jobsql import Sql, filter_jobs, order_by, sort_spec

from jobdeck_exporter import sheetxml
from jobdeck_exporter.columns import LINES_COPY, Layout, copy_options, layout, select_list
from jobdeck_exporter.queries import Q
from jobdeck_exporter.summary import Summary

Sink = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class ExportJob:
    """A claimed export: what to select, for whom, in which format."""

    id: str
    requested_by: str
    format: ExportFormat
    filters: JobFilters
    raw_filters: dict[str, Any]  # as the caller sent them, for the Summary sheet
    fields: list[str]
    include_data: bool
    include_logs: bool
    scope: frozenset[str] | None
    sort: JobSort
    filename: str
    attempt: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExportJob:
        scope = row["scope"]
        return cls(
            id=row["id"],
            requested_by=row["requested_by"],
            format=ExportFormat(row["format"]),
            filters=JobFilters.model_validate(row["filters"] or {}),
            raw_filters=dict(row["filters"] or {}),
            fields=list(row["fields"] or []),
            include_data=row["include_data"],
            include_logs=row["include_logs"],
            scope=None if scope is None else frozenset(scope),
            sort=JobSort(sort_by=row["sort_by"], sort_order=row["sort_order"]),
            filename=row["filename"],
            attempt=row["attempts"],
            created_at=row["created_at"],
        )

    @property
    def layout(self) -> Layout:
        return layout(self.fields, self.include_data, self.include_logs)

    def storage_key(self) -> str:
        """Per attempt: a replica that lost its lease never overwrites its successor's file."""
        return f"{self.id}/{self.attempt}/{self.filename}"


@dataclass(frozen=True)
class Selection:
    where: str
    args: list[Any]
    empty: bool  # the token sees none of the queues asked for
    order: str


def selection(job: ExportJob) -> Selection:
    sql = Sql()
    empty = filter_jobs(sql, job.filters, job.scope)
    return Selection(sql.where(), sql.args, empty, order_by(sort_spec(job.sort)))


class SnapshotReader:
    """Reads one export's rows inside a transaction the caller opened on ``conn``."""

    def __init__(self, conn: asyncpg.Connection, job: ExportJob) -> None:
        self.conn = conn
        self.job = job
        self.sel = selection(job)

    async def count(self) -> int:
        if self.sel.empty:
            return 0
        query = f"SELECT count(*) FROM jobs{self.sel.where}"
        return int(await self.conn.fetchval(query, *self.sel.args))

    async def copy_rows(self, sink: Sink) -> int:
        """The rows of a CSV (no header), JSON (no brackets) or NDJSON file, as Postgres's
        COPY writes them; returns how many."""
        fmt = self.job.format
        select = select_list(fmt, self.job.layout)
        query = f"SELECT {select} FROM jobs{self.sel.where}{self.sel.order}"
        return await self._copy(query, sink, **copy_options(fmt))

    async def copy_sheet_rows(self, date_style: int, sheet_rows: int, sink: Sink) -> int:
        """The Jobs sheets' rows, a line each (``sheetxml``); returns how many."""
        query = sheetxml.jobs_rows(
            self.job.layout, self.sel.where, self.sel.order, self._next_param, date_style
        )
        return await self._copy_sheet(query, sink, sheet_rows)

    async def copy_log_rows(self, date_style: int, sheet_rows: int, sink: Sink) -> int:
        """The Logs sheets' rows, a line each; returns how many."""
        query = sheetxml.logs_rows(self.sel.where, self._next_param, date_style)
        return await self._copy_sheet(query, sink, sheet_rows)

    async def _copy_sheet(self, query: str, sink: Sink, sheet_rows: int) -> int:
        # Hundreds of cell expressions: compiling them (JIT) takes longer than running them.
        await self.conn.execute("SET LOCAL jit = off")
        return await self._copy(query, sink, sheet_rows, **LINES_COPY)

    async def log_count(self) -> int:
        if self.sel.empty:
            return 0
        query = Q["count_logs"].format(where=self.sel.where)
        return int(await self.conn.fetchval(query, *self.sel.args))

    @property
    def _next_param(self) -> int:
        return len(self.sel.args) + 1

    async def _copy(self, query: str, sink: Sink, *extra: Any, **options: str) -> int:
        if self.sel.empty:
            return 0
        status = await self.conn.copy_from_query(
            query, *self.sel.args, *extra, output=sink, **options
        )
        return int(str(status).rsplit(" ", 1)[-1])

    async def summary(self, generated_at: datetime, rows: int) -> Summary:
        job = self.job
        summary = Summary(
            export_id=job.id,
            requested_by=job.requested_by,
            generated_at=generated_at,
            format=job.format.value,
            filters=job.raw_filters,
            fields=job.layout.names,
            sort=f"{job.sort.sort_by} {job.sort.sort_order}",
            rows=rows,
        )
        if self.sel.empty:
            return summary
        args, where = self.sel.args, self.sel.where
        by_status = await self.conn.fetch(Q["count_by_status"].format(where=where), *args)
        by_queue = await self.conn.fetch(Q["count_by_queue"].format(where=where), *args)
        summary.by_status, summary.by_queue = _pairs(by_status), _pairs(by_queue)
        stats = await self.conn.fetchrow(Q["duration_stats"].format(where=where), *args)
        summary.durations = dict(stats) if stats is not None else {}
        return summary


def _pairs(rows: Sequence[asyncpg.Record]) -> list[tuple[str, int]]:
    return [(str(r[0]), int(r[1])) for r in rows]
