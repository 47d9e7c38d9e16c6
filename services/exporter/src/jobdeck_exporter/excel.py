"""Excel workbooks (xlsxwriter, constant-memory mode): Summary, Jobs, and Logs sheets.

Constant-memory mode writes each row to a temporary file once the next row starts, so
memory stays flat, at the price of writing every sheet's rows in order. Sheet order is
creation order, so every sheet is created up front: Summary first (written last, when
the counts are known), then as many Jobs sheets as the snapshot's row count needs
(1,048,575 rows each below the header: Jobs, Jobs (2), ...), then Logs.

User text is written with ``write_string`` and the workbook refuses to turn strings into
formulas or URLs, so ``=cmd|...`` or ``http://...`` in job data stays inert text. Times
are real date cells in UTC (``remove_timezone``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from jobdeck_exporter.columns import Kind, Layout
from jobdeck_exporter.summary import Summary

SHEET_ROWS = 1_048_575  # Excel's 1,048,576 rows a sheet, less the header
WIDTHS = {Kind.TIME: 20, Kind.INT: 11, Kind.FLOAT: 9, Kind.JSON: 50, Kind.TEXT: 18}
NAME_WIDTHS = {"id": 34, "jobName": 26, "errorMessage": 50, "progressMessage": 30}
LOG_HEADER = ("jobId", "attempt", "seq", "ts", "level", "message")
LOG_WIDTHS = (34, 8, 8, 20, 8, 80)


def _sheet_count(rows: int) -> int:
    return max(1, -(-rows // SHEET_ROWS))


class ExcelWriter:
    def __init__(self, path: Path, layout: Layout, rows: int) -> None:
        self.layout = layout
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "remove_timezone": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "nan_inf_to_errors": True,
            },
        )
        self.bold = self.book.add_format({"bold": True})
        self.when = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.summary_sheet = self.book.add_worksheet("Summary")
        names = [c.name for c in layout.columns]
        self.job_sheets = [
            self._sheet("Jobs" if i == 0 else f"Jobs ({i + 1})", names, self._job_widths())
            for i in range(_sheet_count(rows))
        ]
        self.log_sheets: list[Worksheet] = []
        if layout.include_logs:
            self.log_sheets.append(self._sheet("Logs", list(LOG_HEADER), list(LOG_WIDTHS)))
        self.job_row = 0  # rows written across the Jobs sheets
        self.log_row = 0
        # Column indexes by how their cells are written (a row's cells may come in any
        # order: constant-memory mode writes a row out when the next one starts).
        kinds = [c.kind for c in layout.columns]
        self.text_cols = [i for i, k in enumerate(kinds) if k in (Kind.TEXT, Kind.JSON)]
        self.number_cols = [i for i, k in enumerate(kinds) if k in (Kind.INT, Kind.FLOAT)]
        self.time_cols = [i for i, k in enumerate(kinds) if k is Kind.TIME]

    def _job_widths(self) -> list[int]:
        return [NAME_WIDTHS.get(c.name, WIDTHS[c.kind]) for c in self.layout.columns]

    def _sheet(self, name: str, header: list[str], widths: list[int]) -> Worksheet:
        sheet = self.book.add_worksheet(name)
        for col, width in enumerate(widths):
            sheet.set_column(col, col, width)
        sheet.freeze_panes(1, 0)
        for col, title in enumerate(header):
            sheet.write_string(0, col, title, self.bold)
        return sheet

    def write(self, rows: Sequence[Sequence[Any]], logs: Sequence[Sequence[Any]]) -> None:
        """Text is cut at Excel's 32,767 characters by xlsxwriter itself."""
        text_cols, number_cols, time_cols, when = (
            self.text_cols,
            self.number_cols,
            self.time_cols,
            self.when,
        )
        for row in rows:
            sheet = self.job_sheets[min(self.job_row // SHEET_ROWS, len(self.job_sheets) - 1)]
            r = self.job_row % SHEET_ROWS + 1
            write_string, write_number, write_datetime = (
                sheet.write_string,
                sheet.write_number,
                sheet.write_datetime,
            )
            for c in text_cols:
                if (v := row[c]) is not None:
                    write_string(r, c, v)
            for c in number_cols:
                if (v := row[c]) is not None:
                    write_number(r, c, v)
            for c in time_cols:
                if (v := row[c]) is not None:
                    write_datetime(r, c, v, when)
            self.job_row += 1
        for line in logs:
            self._write_log(line)

    def _write_log(self, line: Sequence[Any]) -> None:
        index = self.log_row // SHEET_ROWS
        if index == len(self.log_sheets):  # past the first Logs sheet: one more, at the end
            name = f"Logs ({index + 1})"
            self.log_sheets.append(self._sheet(name, list(LOG_HEADER), list(LOG_WIDTHS)))
        sheet = self.log_sheets[index]
        r = self.log_row % SHEET_ROWS + 1
        job_id, attempt, seq, ts, level, message = line
        sheet.write_string(r, 0, job_id)
        sheet.write_number(r, 1, attempt)
        sheet.write_number(r, 2, seq)
        sheet.write_datetime(r, 3, ts, self.when)
        sheet.write_string(r, 4, level)
        sheet.write_string(r, 5, message)
        self.log_row += 1

    def finish(self, summary: Summary) -> None:
        last_col = len(self.layout.columns) - 1
        for i, sheet in enumerate(self.job_sheets):
            rows_here = min(SHEET_ROWS, max(0, self.job_row - i * SHEET_ROWS))
            sheet.autofilter(0, 0, rows_here, last_col)
        for i, sheet in enumerate(self.log_sheets):
            rows_here = min(SHEET_ROWS, max(0, self.log_row - i * SHEET_ROWS))
            sheet.autofilter(0, 0, rows_here, len(LOG_HEADER) - 1)
        summary.log_lines = self.log_row
        self._write_summary(summary)
        self.book.close()

    def _write_summary(self, s: Summary) -> None:
        ws = self.summary_sheet
        ws.set_column(0, 0, 24)
        ws.set_column(1, 1, 60)
        r = 0

        def pair(label: str, value: Any) -> None:
            nonlocal r
            ws.write_string(r, 0, label, self.bold)
            if isinstance(value, datetime):
                ws.write_datetime(r, 1, value, self.when)
            elif isinstance(value, int | float):
                ws.write_number(r, 1, value)
            elif value is not None:
                ws.write_string(r, 1, str(value))
            r += 1

        pair("Job export", s.export_id)
        pair("Generated at (UTC)", s.generated_at)
        pair("Requested by", s.requested_by)
        pair("Jobs", s.rows)
        if self.layout.include_logs:
            pair("Log lines", s.log_lines)
        pair("Sort", s.sort)
        pair("Fields", ", ".join(s.fields))
        r += 1
        ws.write_string(r, 0, "Filters", self.bold)
        r += 1
        if not s.filters:
            pair("(none)", "every job the requester may see")
        for name, value in s.filters.items():
            pair(name, value if isinstance(value, str | int | float) else json.dumps(value))
        r += 1
        for title, counts in (("Status", s.by_status), ("Queue", s.by_queue)):
            ws.write_string(r, 0, title, self.bold)
            ws.write_string(r, 1, "Jobs", self.bold)
            r += 1
            for name, n in counts:
                pair(name, n)
            r += 1
        ws.write_string(r, 0, "Duration (ms)", self.bold)
        r += 1
        for stat, value in s.durations.items():
            pair(stat, value)
