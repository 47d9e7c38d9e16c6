"""Excel workbooks: Summary, Jobs and Logs sheets, a million rows in seconds.

xlsxwriter writes every part of the workbook except the data rows: the Summary sheet, the
styles, and each Jobs and Logs sheet with its bold header row, widths, frozen header,
autofilter and dimension. The data rows arrive as SpreadsheetML lines made by Postgres
(``sheetxml.py``) and are streamed into those sheets inside the .xlsx zip: nothing is held
in memory beyond one block, and nothing is written twice. Sheet order is creation order:
Summary, then as many Jobs sheets as the row count needs (1,048,575 rows each below the
header: Jobs, Jobs (2), ...), then Logs (and Logs (2)...). The workbook refuses to turn
strings into formulas or URLs, so the Summary's filter values stay inert text too.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from jobdeck_exporter.columns import Kind, Layout
from jobdeck_exporter.sheetxml import LOG_HEADER
from jobdeck_exporter.summary import Summary

SHEET_ROWS = 1_048_575  # Excel's 1,048,576 rows a sheet, less the header
WIDTHS = {Kind.TIME: 20, Kind.INT: 11, Kind.FLOAT: 9, Kind.JSON: 50, Kind.TEXT: 18}
NAME_WIDTHS = {"id": 34, "jobName": 26, "errorMessage": 50, "progressMessage": 30}
LOG_WIDTHS = (34, 8, 8, 20, 8, 80)
# zlib level of the sheets: 1 compresses a row about as fast as Postgres makes it; 6
# (zipfile's default) takes three times as long for a file about a fifth smaller.
COMPRESS_LEVEL = 1
# Largest sheet XML: Zip64 would lift it, but Excel refuses the Zip64 local headers that
# Python writes for a member of unknown size (Apache POI bug 57342), as xlsxwriter's default.
MAX_SHEET_BYTES = zipfile.ZIP64_LIMIT
_DIMENSION = re.compile(rb'<dimension ref="[^"]*"/>')
_SHEET_DATA_END = b"</sheetData>"


def sheet_count(rows: int) -> int:
    return max(1, -(-rows // SHEET_ROWS))


def rows_on(sheet: int, rows: int) -> int:
    """How many of ``rows`` go on the ``sheet``-th sheet (from 0)."""
    return min(SHEET_ROWS, max(0, rows - sheet * SHEET_ROWS))


@dataclass(frozen=True)
class DataSheet:
    """A data sheet's part of the zip, split around where its rows go."""

    part: str  # e.g. xl/worksheets/sheet2.xml
    head: bytes  # through the header row
    tail: bytes  # from </sheetData>
    rows: int


class SheetTooLarge(Exception):
    """A sheet's XML would pass what one zip member may hold without Zip64."""


class ExcelWriter:
    """One workbook: ``__init__`` writes every part but the data rows; then ``write_jobs``
    and ``write_logs`` take the rows' lines, in order, in blocks cut anywhere; ``close``."""

    def __init__(
        self, path: Path, layout: Layout, summary: Summary, rows: int, log_rows: int
    ) -> None:
        skeleton = path.with_name(path.name + ".parts.xlsx")
        try:
            self.date_style, jobs, logs = _write_skeleton(skeleton, layout, summary, rows, log_rows)
            self._zip = zipfile.ZipFile(
                path, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=COMPRESS_LEVEL
            )
            self.jobs = _sheets(skeleton, jobs)
            self.logs = _sheets(skeleton, logs)
            with zipfile.ZipFile(skeleton) as parts:
                data = {s.part for s in (*self.jobs, *self.logs)}
                for info in parts.infolist():
                    if info.filename not in data:
                        self._zip.writestr(info.filename, parts.read(info))
        finally:
            skeleton.unlink(missing_ok=True)
        self._jobs = _SheetStream(self._zip, self.jobs)
        self._logs = _SheetStream(self._zip, self.logs)

    def write_jobs(self, block: bytes) -> None:
        self._jobs.write(block)

    def write_logs(self, block: bytes) -> None:
        self._jobs.close()
        self._logs.write(block)

    def close(self) -> None:
        self._jobs.close()
        self._logs.close()
        self._zip.close()

    def abort(self) -> None:
        self._jobs.abort()
        self._logs.abort()
        self._zip.close()


class _SheetStream:
    """Row lines into consecutive sheets, ``SHEET_ROWS`` lines each, one open at a time."""

    def __init__(self, zf: zipfile.ZipFile, sheets: Sequence[DataSheet]) -> None:
        self.zip = zf
        self.todo = list(sheets)
        self.sheet: DataSheet | None = None
        self.out: Any = None
        self.left = 0  # lines still to come on the open sheet
        self.size = 0  # bytes written to the open sheet

    def _next(self) -> None:
        if self.out is not None:
            self._finish_sheet()
        if not self.todo:
            raise RuntimeError("more rows than the export counted")
        self.sheet = self.todo.pop(0)
        self.out = self.zip.open(self.sheet.part, "w")
        self.left = self.sheet.rows
        self.size = 0
        self._put(self.sheet.head)

    def _put(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > MAX_SHEET_BYTES:
            raise SheetTooLarge(
                "a sheet of this export passes 2 GiB of XML, more than an .xlsx can hold:"
                " export fewer fields (job data makes rows long) or use CSV or NDJSON"
            )
        self.out.write(data)

    def _finish_sheet(self) -> None:
        assert self.sheet is not None
        self._put(self.sheet.tail)
        self.out.close()
        self.out = None

    def write(self, block: bytes) -> None:
        view = memoryview(block)
        start = 0
        while start < len(block):
            if self.out is None or self.left == 0:
                self._next()
            lines = block.count(b"\n", start)
            if lines < self.left:  # all on this sheet (a row cut at the end goes on next time)
                end = len(block)
                self.left -= lines
            else:  # this sheet ends within the block
                end = start
                for _ in range(self.left):
                    end = block.index(b"\n", end) + 1
                self.left = 0
            self._put(view[start:end])
            start = end

    def close(self) -> None:
        """Finish the open sheet and write the ones no row reached (empty ones)."""
        if self.out is not None:
            self._finish_sheet()
        while self.todo:
            self._next()
            self._finish_sheet()

    def abort(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def _sheets(skeleton: Path, planned: list[tuple[str, int, int]]) -> list[DataSheet]:
    """Each data sheet's XML from the skeleton, split where its rows go; its dimension
    covers the rows to come (``(part, rows, columns)``)."""
    out = []
    with zipfile.ZipFile(skeleton) as parts:
        for part, rows, columns in planned:
            xml = parts.read(part)
            cut = xml.index(_SHEET_DATA_END)
            last = xlsxwriter.utility.xl_rowcol_to_cell(rows, columns - 1)
            head = _DIMENSION.sub(f'<dimension ref="A1:{last}"/>'.encode(), xml[:cut], count=1)
            out.append(DataSheet(part, head, xml[cut:], rows))
    return out


def _write_skeleton(
    path: Path, layout: Layout, summary: Summary, rows: int, log_rows: int
) -> tuple[int, list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """The workbook without its data rows; returns the date cells' style and, for the Jobs
    and the Logs sheets, (zip part, rows, columns)."""
    book = xlsxwriter.Workbook(
        str(path),
        {
            "remove_timezone": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    summary_sheet = book.add_worksheet("Summary")
    names = [c.name for c in layout.columns]
    widths = [NAME_WIDTHS.get(c.name, WIDTHS[c.kind]) for c in layout.columns]
    jobs: list[tuple[str, int, int]] = []
    logs: list[tuple[str, int, int]] = []
    for i in range(sheet_count(rows)):
        name = "Jobs" if i == 0 else f"Jobs ({i + 1})"
        _data_sheet(book, name, names, widths, rows_on(i, rows), bold)
        jobs.append((_part(book), rows_on(i, rows), len(names)))
    if layout.include_logs:
        for i in range(sheet_count(log_rows)):
            name = "Logs" if i == 0 else f"Logs ({i + 1})"
            _data_sheet(book, name, list(LOG_HEADER), LOG_WIDTHS, rows_on(i, log_rows), bold)
            logs.append((_part(book), rows_on(i, log_rows), len(LOG_HEADER)))
    _write_summary(summary_sheet, summary, layout.include_logs, bold, when)
    book.close()
    assert isinstance(when.xf_index, int)  # given by close()
    return when.xf_index, jobs, logs


def _part(book: xlsxwriter.Workbook) -> str:
    """The zip part of the sheet added last (xlsxwriter numbers them in creation order)."""
    return f"xl/worksheets/sheet{len(book.worksheets())}.xml"


def _data_sheet(
    book: xlsxwriter.Workbook,
    name: str,
    header: list[str],
    widths: Sequence[int],
    rows: int,
    bold: Format,
) -> Worksheet:
    sheet = book.add_worksheet(name)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    for col, title in enumerate(header):
        sheet.write_string(0, col, title, bold)
    sheet.autofilter(0, 0, rows, len(header) - 1)
    return sheet


def _write_summary(
    ws: Worksheet, s: Summary, include_logs: bool, bold: Format, when: Format
) -> None:
    ws.set_column(0, 0, 24)
    ws.set_column(1, 1, 60)
    r = 0

    def pair(label: str, value: Any) -> None:
        nonlocal r
        ws.write_string(r, 0, label, bold)
        if isinstance(value, datetime):
            ws.write_datetime(r, 1, value, when)
        elif isinstance(value, int | float):
            ws.write_number(r, 1, value)
        elif value is not None:
            ws.write_string(r, 1, str(value))
        r += 1

    pair("Job export", s.export_id)
    pair("Generated at (UTC)", s.generated_at)
    pair("Requested by", s.requested_by)
    pair("Jobs", s.rows)
    if include_logs:
        pair("Log lines", s.log_lines)
    pair("Sort", s.sort)
    pair("Fields", ", ".join(s.fields))
    r += 1
    ws.write_string(r, 0, "Filters", bold)
    r += 1
    if not s.filters:
        pair("(none)", "every job the requester may see")
    for name, value in s.filters.items():
        pair(name, value if isinstance(value, str | int | float) else json.dumps(value))
    r += 1
    for title, counts in (("Status", s.by_status), ("Queue", s.by_queue)):
        ws.write_string(r, 0, title, bold)
        ws.write_string(r, 1, "Jobs", bold)
        r += 1
        for name, n in counts:
            pair(name, n)
        r += 1
    ws.write_string(r, 0, "Duration (ms)", bold)
    r += 1
    for stat, value in s.durations.items():
        pair(stat, value)
