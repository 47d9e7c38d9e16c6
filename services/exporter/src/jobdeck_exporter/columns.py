"""Which columns an export selects, and the SQL expression each becomes per format.

Postgres formats the cells (in C, in the snapshot's transaction): timestamps as ISO 8601
UTC with milliseconds, JSON columns as text, CSV cells neutralised against formula
injection, JSON documents built whole. Python then only joins and writes: that is what
keeps a million-row CSV near the speed of ``COPY``. Column names come from a whitelist
only (``jobdeck.exports``); nothing a caller sends reaches SQL except as a bound value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from jobdeck.exports import DATA_COLUMN_OF, SUMMARY_COLUMN_OF, ExportFormat


class Kind(StrEnum):
    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    TIME = "time"
    JSON = "json"


KIND_OF_COLUMN: dict[str, Kind] = {
    "priority": Kind.INT,
    "attempts": Kind.INT,
    "max_attempts": Kind.INT,
    "duration_ms": Kind.INT,
    "progress": Kind.FLOAT,
    "created_at": Kind.TIME,
    "run_at": Kind.TIME,
    "started_at": Kind.TIME,
    "finished_at": Kind.TIME,
    "data": Kind.JSON,
    "options": Kind.JSON,
    "result": Kind.JSON,
}

# OWASP CSV injection: a cell starting with one of these would run as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# Their code points: a cell costs one ascii() call and integer comparisons, no substring.
_FORMULA_CODES = ", ".join(str(ord(c)) for c in sorted(FORMULA_STARTS))
ISO_UTC = '\'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\''


@dataclass(frozen=True)
class Column:
    name: str  # the public (search item) name, e.g. ``jobName``
    column: str  # the jobs column, e.g. ``name``
    kind: Kind


@dataclass(frozen=True)
class Layout:
    """The columns of one export, in order, and whether each job carries its logs."""

    columns: tuple[Column, ...]
    include_logs: bool

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns] + (["logs"] if self.include_logs else [])


def layout(fields: Sequence[str] | None, include_data: bool, include_logs: bool) -> Layout:
    """The export's columns: the requested fields (validated by the API), else all summary
    fields; the data fields too with ``includeData``."""
    names = list(fields) if fields else list(SUMMARY_COLUMN_OF)
    if include_data:
        names += [n for n in DATA_COLUMN_OF if n not in names]
    columns = []
    for name in names:
        column = SUMMARY_COLUMN_OF.get(name) or DATA_COLUMN_OF[name]
        columns.append(Column(name, column, KIND_OF_COLUMN.get(column, Kind.TEXT)))
    return Layout(tuple(columns), include_logs)


def neutralised(expr: str) -> str:
    """``expr`` (text) with a ``'`` prefixed when a spreadsheet would run it as a formula."""
    return f"(CASE WHEN ascii({expr}) IN ({_FORMULA_CODES}) THEN '''' || {expr} ELSE {expr} END)"


def iso(expr: str) -> str:
    return f"to_char({expr} AT TIME ZONE 'UTC', {ISO_UTC})"


def json_value(expr: str, kind: Kind) -> str:
    """SQL for the JSON text of ``expr`` (``null`` for NULL). Built with ``||``: a third of
    the time ``json_build_object`` takes, which looks up every value's type and output
    function again on every row."""
    if kind is Kind.TIME:
        text = f"'\"' || {iso(expr)} || '\"'"  # digits and -:.TZ: nothing to escape
    elif kind in (Kind.INT, Kind.JSON):
        text = f"{expr}::text"
    else:  # text escaped; a float's NaN or infinity quoted
        text = f"to_json({expr})::text"
    return f"coalesce({text}, 'null')"


def json_object(members: Sequence[tuple[str, str]]) -> str:
    """SQL for one JSON object's text (compact) from (key, SQL of the value's JSON text);
    keys come from the whitelist only."""
    parts = [
        f"'{'{' if i == 0 else ','}\"{key}\":' || {value}" for i, (key, value) in enumerate(members)
    ]
    return "(" + " || ".join(parts) + " || '}')"


_LOG_LINE = json_object(
    [
        (key, json_value(f"l.{column}", kind))
        for key, column, kind in [
            ("attempt", "attempt", Kind.INT),
            ("seq", "seq", Kind.INT),
            ("ts", "ts", Kind.TIME),
            ("level", "level", Kind.TEXT),
            ("message", "message", Kind.TEXT),
        ]
    ]
)
# A job's log lines: a JSON array's text, "[]" when it has none.
LOGS_JSON = (
    f"(SELECT '[' || coalesce(string_agg({_LOG_LINE}, ',' ORDER BY l.attempt, l.seq), '') || ']'"
    " FROM job_logs l WHERE l.job_id = jobs.id)"
)


def json_cell(expr: str) -> str:
    """A JSON value as CSV text: only a negative number starts like a formula (an object,
    array, string or literal starts with one of ``{["tfn``), so only numbers are checked and
    the value is cast once otherwise."""
    text = f"{expr}::text"
    return f"(CASE WHEN jsonb_typeof({expr}) = 'number' THEN {neutralised(text)} ELSE {text} END)"


def csv_select(lay: Layout) -> str:
    """The CSV cells, named ``c0``, ``c1``...: an output column named like a jobs column
    (a ``CASE`` takes its ``ELSE``'s name) would be what ``ORDER BY id`` sorts by, not the
    column (the neutralised id: another order, and a sort instead of the index's order)."""
    parts = []
    for c in lay.columns:
        if c.kind is Kind.TIME:
            parts.append(iso(c.column))
        elif c.kind is Kind.JSON:
            parts.append(json_cell(c.column))
        elif c.kind is Kind.TEXT:
            parts.append(neutralised(c.column))
        else:
            parts.append(c.column)
    if lay.include_logs:
        parts.append(LOGS_JSON)  # a JSON array: starts with "["
    return ", ".join(f"{part} AS c{i}" for i, part in enumerate(parts))


def json_select(lay: Layout) -> str:
    """One JSON object (as text) per job, keys in the layout's order."""
    members = [(c.name, json_value(c.column, c.kind)) for c in lay.columns]
    if lay.include_logs:
        members.append(("logs", LOGS_JSON))
    return json_object(members)


def select_list(fmt: ExportFormat, lay: Layout) -> str:
    """CSV cells, or one JSON document (NDJSON; JSON: with the comma that follows an array's
    element, the last one's dropped by the writer); Excel's rows are ``sheetxml``'s."""
    if fmt is ExportFormat.CSV:
        return csv_select(lay)
    return json_select(lay) + (" || ','" if fmt is ExportFormat.JSON else "")


# COPY options: CSV as Postgres writes it (RFC 4180); lines (JSON, NDJSON and the Excel
# sheets' rows): CSV with a delimiter and a quote character no row can hold (JSON and the
# sheets' XML escape control characters), so each row's one text comes out untouched, a
# line each.
CSV_COPY = {"format": "csv"}
LINES_COPY = {"format": "csv", "delimiter": "\x02", "quote": "\x01"}


def copy_options(fmt: ExportFormat) -> dict[str, str]:
    return CSV_COPY if fmt is ExportFormat.CSV else LINES_COPY
