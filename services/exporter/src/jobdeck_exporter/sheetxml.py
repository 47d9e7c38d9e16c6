"""The rows of an Excel export's Jobs and Logs sheets as SpreadsheetML, written by Postgres.

One ``<row>`` a line, built in SQL inside the export's snapshot and read with ``COPY``, as
the CSV is: xlsxwriter spends several µs of Python a cell (over a minute for a million
jobs) where Postgres formats them in C. The cells are the ones xlsxwriter writes: text as
inline strings (escaped as xlsxwriter escapes them: ``&<>``, control characters as
``_xHHHH_``, cut at Excel's 32,767 UTF-16 units), numbers as numbers, times as date serials
in UTC with the workbook's date style. A text cell is never a formula or a link, whatever
it starts with. Line feeds inside text are written ``&#10;``, so no row holds a raw newline
and each line of the COPY is one sheet row. Row numbers restart at 2 on each sheet
(row 1 is the header xlsxwriter writes).
"""

from __future__ import annotations

from collections.abc import Sequence

from xlsxwriter.utility import xl_col_to_name

from jobdeck_exporter.columns import Kind, Layout

LOG_HEADER = ("jobId", "attempt", "seq", "ts", "level", "message")
_LOG_CELLS = (
    ("job_id", Kind.TEXT),
    ("attempt", Kind.INT),
    ("seq", Kind.INT),
    ("ts", Kind.TIME),
    ("level", Kind.TEXT),
    ("message", Kind.TEXT),
)

MAX_UTF16 = 32_767  # Excel's limit of a cell's text, in UTF-16 units
# What xlsxwriter writes as _xHHHH_: C0 controls but tab and line feed, and two
# non-characters; a literal "_xHHHH_" gets its underscore escaped so it reads back as is.
_CONTROLS = [*range(0x01, 0x09), *range(0x0B, 0x20), 0xFFFE, 0xFFFF]
_NEEDS_ESCAPE = r"'[\x01-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_'"
_ENTITIES = (("'&'", "&amp;"), ("'<'", "&lt;"), ("'>'", "&gt;"), (r"E'\n'", "&#10;"))


def _cut(v: str) -> str:
    """``v`` cut to 32,767 UTF-16 units, a character past U+FFFF counting two (never split),
    as xlsxwriter cuts it; only text over 16,383 characters can be too long."""
    units = "sum(CASE WHEN ascii(ch) > 65535 THEN 2 ELSE 1 END) OVER (ORDER BY i)"
    chars = f"regexp_split_to_table(left({v}, {MAX_UTF16}), '') WITH ORDINALITY AS t(ch, i)"
    cut = (
        f"(SELECT string_agg(ch, '' ORDER BY i) FROM (SELECT ch, i, {units} AS units"
        f" FROM {chars}) c WHERE units <= {MAX_UTF16})"
    )
    return f"CASE WHEN length({v}) > {MAX_UTF16 // 2} THEN {cut} ELSE {v} END"


def _escape_controls(v: str) -> str:
    out = f"regexp_replace({v}, '(_x[0-9A-Fa-f]{{4}}_)', '_x005F\\1', 'g')"
    for code in _CONTROLS:
        out = f"replace({out}, chr({code}), '_x{code:04X}_')"
    return out


def xml_text(v: str, escape: str) -> str:
    """SQL for the text ``v`` as the content of an inline string; ``escape``: whether the
    row holds a character to write as _xHHHH_ (checked once a row: it is rare)."""
    cut = _cut(v)
    out = f"CASE WHEN {escape} THEN {_escape_controls(cut)} ELSE {cut} END"
    for raw, entity in _ENTITIES:
        out = f"replace({out}, {raw}, '{entity}')"
    return out


def _cell(kind: Kind, col: int, v: str, date_style: int) -> str:
    """SQL for one cell's XML: NULL, so no cell, when ``v`` is NULL."""
    ref = f"'<c r=\"{xl_col_to_name(col)}', r"
    if kind is Kind.TEXT:
        inline = '\'" t="inlineStr"><is><t xml:space="preserve">\''
        xml = f"{ref}, {inline}, {xml_text(v, 'escape')}, '</t></is></c>'"
    elif kind is Kind.TIME:
        serial = f"date_part('epoch', {v}) / 86400 + 25569"  # 1970-01-01 is day 25,569
        xml = f"{ref}, '\" s=\"{date_style}\"><v>', {serial}, '</v></c>'"
    elif kind is Kind.FLOAT:  # like xlsxwriter: NaN and infinities as Excel's #NUM! error
        xml = (
            f"{ref}, CASE WHEN {v} IN ('NaN', 'Infinity', '-Infinity')"
            f" THEN '\" t=\"e\"><v>#NUM!' ELSE concat('\"><v>', {v}) END, '</v></c>'"
        )
    else:
        xml = f"{ref}, '\"><v>', {v}, '</v></c>'"
    return f"CASE WHEN {v} IS NOT NULL THEN concat({xml}) END"


def _rows(cells: Sequence[tuple[str, Kind]], date_style: int, source: str, keys: str) -> str:
    """The rows of ``source`` (a FROM item holding the cells' columns and ``r``, the row's
    number on its sheet, as text) in the order ``keys``."""
    xml = [_cell(kind, i, v, date_style) for i, (v, kind) in enumerate(cells)]
    return (
        f"SELECT concat('<row r=\"', r, '\">', {', '.join(xml)}, '</row>')"
        f" FROM {source} ORDER BY {keys}"
    )


def _numbered(keys: str, sheet_rows_param: int) -> str:
    """Each row's number on its sheet, from its place in the order ``keys``."""
    return f"((row_number() OVER (ORDER BY {keys}) - 1) % ${sheet_rows_param} + 2)::text AS r"


def _escape_flag(texts: Sequence[str]) -> str:
    return f"concat({', '.join(texts)}) ~ {_NEEDS_ESCAPE} AS escape" if texts else "false AS escape"


def jobs_rows(lay: Layout, where: str, order: str, sheet_rows_param: int, date_style: int) -> str:
    """The Jobs sheets' rows, in the export's order (``order``: `` ORDER BY ...``).

    The outer ORDER BY is the window's own, so Postgres sorts once (or not at all, along
    an index)."""
    keys = order.removeprefix(" ORDER BY ")
    # JSON columns are cast to text once, in the inner query.
    texts = "".join(
        f", {c.column}::text AS text_{c.column}" for c in lay.columns if c.kind is Kind.JSON
    )
    cells = [
        (f"text_{c.column}", Kind.TEXT) if c.kind is Kind.JSON else (c.column, c.kind)
        for c in lay.columns
    ]
    flag = _escape_flag(
        [f"{c.column}::text" if c.kind is Kind.JSON else c.column for c in lay.columns
         if c.kind in (Kind.TEXT, Kind.JSON)]
    )  # fmt: skip
    source = (
        f"(SELECT jobs.*{texts}, {flag}, {_numbered(keys, sheet_rows_param)} FROM jobs{where}) jobs"
    )
    return _rows(cells, date_style, source, keys)


def logs_rows(where: str, sheet_rows_param: int, date_style: int) -> str:
    """The Logs sheets' rows: every log line of the exported jobs, by job, attempt, line."""
    keys = "job_id, attempt, seq"
    flag = _escape_flag([c for c, kind in _LOG_CELLS if kind is Kind.TEXT])
    source = (
        f"(SELECT job_logs.*, {flag}, {_numbered(keys, sheet_rows_param)} FROM job_logs"
        f" WHERE job_id IN (SELECT id FROM jobs{where})) logs"
    )
    return _rows(_LOG_CELLS, date_style, source, keys)
