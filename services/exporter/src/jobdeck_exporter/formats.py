"""CSV, JSON and NDJSON files, written chunk by chunk: nothing is held beyond one chunk
(Excel workbooks: ``excel.py``).

The cells arrive formatted by Postgres (``columns.py``); these writers only frame them:

- CSV: written by Postgres itself (``COPY ... TO STDOUT WITH CSV`` inside the export's
  snapshot): RFC 4180 quoting (comma, ``"`` doubled inside quotes) with LF line ends as
  Postgres writes them (every CSV reader, Excel's included, takes LF or CRLF), UTF-8
  without a BOM, a header row of the field names; each job's logs, with ``includeLogs``,
  as a JSON array in a ``logs`` column. Cells a spreadsheet would run as a formula start
  with ``'``. Postgres formatting the file is what keeps it near the speed of COPY.
- JSON: one array, written as it goes (``[``, the objects separated by commas, ``]``).
- NDJSON: one object a line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from jobdeck.exports import ExportFormat

from jobdeck_exporter.columns import Layout


class FileWriter(Protocol):
    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append one chunk of rows."""

    def finish(self) -> None:
        """Complete and close the file."""


class CsvWriter:
    """The header row, then the bytes of Postgres's COPY as they come (``write_copy``)."""

    def __init__(self, path: Path, layout: Layout) -> None:
        self._file = path.open("wb")
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(layout.names)
        self._file.write(header.getvalue().encode())

    def write_copy(self, data: bytes) -> None:
        self._file.write(data)

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        raise TypeError("CSV rows come from COPY: use write_copy")

    def finish(self) -> None:
        self._file.close()


class JsonWriter:
    """A JSON array (``ndjson=False``) or one document a line; rows are JSON texts."""

    def __init__(self, path: Path, ndjson: bool) -> None:
        self._file = io.TextIOWrapper(path.open("wb"), encoding="utf-8", newline="")
        self._ndjson = ndjson
        self._first = True
        if not ndjson:
            self._file.write("[")

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._ndjson:
            self._file.write("\n".join(r[0] for r in rows))
            self._file.write("\n")
            return
        self._file.write("\n" if self._first else ",\n")
        self._first = False
        self._file.write(",\n".join(r[0] for r in rows))

    def finish(self) -> None:
        if not self._ndjson:
            self._file.write("]\n" if self._first else "\n]\n")
        self._file.close()


def open_writer(fmt: ExportFormat, path: Path, layout: Layout) -> FileWriter:
    """The writer of ``fmt`` (CSV, JSON or NDJSON)."""
    if fmt is ExportFormat.CSV:
        return CsvWriter(path, layout)
    return JsonWriter(path, ndjson=fmt is ExportFormat.NDJSON)
