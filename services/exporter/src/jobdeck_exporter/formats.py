"""CSV, JSON and NDJSON files: a head, the bytes of Postgres's COPY as they come, an end;
nothing is held in memory (Excel workbooks: ``excel.py``).

The rows arrive made by Postgres (``columns.py``), inside the export's snapshot; this only
frames them:

- CSV: ``COPY ... TO STDOUT WITH CSV``: RFC 4180 quoting (comma, ``"`` doubled inside
  quotes) with LF line ends as Postgres writes them (every CSV reader, Excel's included,
  takes LF or CRLF), UTF-8 without a BOM, after a header row of the field names; each job's
  logs, with ``includeLogs``, as a JSON array in a ``logs`` column. Cells a spreadsheet
  would run as a formula start with ``'``.
- JSON: one array, ``[``, an object a line each followed by a comma (the last one's
  dropped at the end), ``]``.
- NDJSON: one object a line.

Postgres making the whole file is what keeps an export near the speed of ``COPY`` itself.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from jobdeck.exports import ExportFormat

from jobdeck_exporter.columns import Layout


def head(fmt: ExportFormat, layout: Layout) -> bytes:
    """What comes before the rows: the CSV header row, or the JSON array's ``[``."""
    if fmt is ExportFormat.CSV:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(layout.names)
        return header.getvalue().encode()
    return b"[\n" if fmt is ExportFormat.JSON else b""


class TextFile:
    """A CSV, JSON or NDJSON export file being written."""

    def __init__(self, path: Path, fmt: ExportFormat, layout: Layout) -> None:
        self._file = path.open("wb")
        self._json = fmt is ExportFormat.JSON
        self._file.write(head(fmt, layout))

    def write(self, data: bytes) -> None:
        """Append COPY's bytes (whole rows or not)."""
        self._file.write(data)

    def finish(self, rows: int) -> None:
        """Complete the file once all ``rows`` are in, and close it."""
        if self._json:
            if rows:
                self._file.seek(-2, os.SEEK_END)  # the last object's ",\n"
                self._file.truncate()
                self._file.write(b"\n")
            self._file.write(b"]\n")
        self._file.close()

    def close(self) -> None:
        """Close it unfinished (the export failed)."""
        self._file.close()
