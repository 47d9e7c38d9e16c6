"""Excel exports (``excel.py``, ``sheetxml.py``): rows made by Postgres read back exactly as
xlsxwriter's own cells would, numbered sheets past a sheet's rows, a Summary first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from aiohttp.test_utils import TestClient
from jobdeck_exporter import excel

from tests.support.api import BASE, job_row, seed
from tests.support.exporter import download, finished_export, read_xlsx

# What xlsxwriter escapes or cuts: markup, control characters, its own _xHHHH_ escape
# written literally, line breaks and tabs, edge whitespace, astral characters, and more
# text than a cell holds (cut at 32,767 UTF-16 units, each emoji counting two).
HOSTILE = [
    '<b>&amp; "quoted"</b> > less',
    "bell\x07 escape\x1b cr\r end",
    "literal _x0041_ and _X00ff_ stay",
    "two\nlines\tand a tab",
    "  padded  ",
    "=1+2",
    "emoji 🎉 and ü",
    "🎉" * 20_000,
    "x" * 40_000,
    "\ufffe\uffff",
]


def reference_values(values: list[str], path: Path) -> list[Any]:
    """What openpyxl reads back from inline strings xlsxwriter itself wrote with ``values``
    (constant-memory mode, as the exporter's cells: openpyxl reads them as they are)."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    for row, value in enumerate(values):
        sheet.write_string(row, 0, value)
    book.close()
    return [c.value for c in openpyxl.load_workbook(path).active["A"]]


async def test_text_numbers_and_dates_read_back_as_xlsxwriter_writes_them(
    api: TestClient, exporter: TestClient, pg: Any, tmp_path: Path
) -> None:
    rows = [
        job_row(
            status="failed",
            name=text,
            error_message=text,
            priority=i,
            progress=100 / 3,
            created_at=BASE + timedelta(hours=i, milliseconds=250),
        )
        for i, text in enumerate(HOSTILE)
    ]
    await seed(pg, rows)
    body = {"format": "excel", "sortBy": "createdAt", "sortOrder": "asc"}
    info = await finished_export(api, {**body, "fields": ["jobName", "errorMessage"]})
    book = read_xlsx(await download(exporter, info["url"]))
    sheet = book["Jobs"]
    expected = reference_values(HOSTILE, tmp_path / "reference.xlsx")
    assert [c.value for c in sheet["A"][1:]] == expected
    assert [c.value for c in sheet["B"][1:]] == expected
    assert all(c.data_type == "s" for c in sheet["A"][1:])  # "=1+2" too: text, not a formula

    fields = ["id", "priority", "progress", "createdAt", "finishedAt", "runAt"]
    info = await finished_export(api, {**body, "fields": fields})
    sheet = read_xlsx(await download(exporter, info["url"]))["Jobs"]
    assert sheet.max_row == 1 + len(HOSTILE) and sheet.max_column == len(fields)
    for i, row in enumerate(sheet.iter_rows(min_row=2, values_only=True)):
        job_id, priority, progress, created, finished, run_at = row
        assert job_id == rows[i]["id"] and priority == i and progress == pytest.approx(100 / 3)
        assert created == rows[i]["created_at"].astimezone(UTC).replace(tzinfo=None)
        assert isinstance(finished, datetime) and run_at is None  # a NULL is an empty cell


async def test_rows_past_a_sheet_continue_on_numbered_sheets(
    api: TestClient, exporter: TestClient, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(excel, "SHEET_ROWS", 3)  # Excel's 1,048,575, scaled down
    rows = [
        job_row(id=f"job-{i}", created_at=BASE + timedelta(hours=i), duration_ms=i * 10)
        for i in range(7)
    ]
    await seed(pg, rows)
    await pg.executemany(
        "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message) VALUES ($1,1,$2,$3,$4,$5)",
        [(f"job-{i}", s, BASE, "info", f"=line {s}") for i in range(2) for s in range(3)],
    )
    body = {
        "format": "excel",
        "fields": ["id", "createdAt", "duration"],
        "includeLogs": True,
        "sortBy": "createdAt",
        "sortOrder": "asc",
        "filters": {"status": ["completed"]},
    }
    info = await finished_export(api, body)
    assert info["rows"] == 7
    book = read_xlsx(await download(exporter, info["url"]))
    assert book.sheetnames == ["Summary", "Jobs", "Jobs (2)", "Jobs (3)", "Logs", "Logs (2)"]
    jobs = ("Jobs", "Jobs (2)", "Jobs (3)")
    assert [book[n].max_row for n in jobs] == [4, 4, 2]
    ids = [c.value for name in jobs for c in book[name]["A"][1:]]
    assert ids == [f"job-{i}" for i in range(7)]
    assert [c.value for c in book["Jobs (2)"][1]] == ["id", "createdAt", "duration"]
    assert book["Jobs (3)"]["B2"].value == datetime(2024, 3, 1, 6)  # a date cell, UTC
    assert book["Jobs (3)"].auto_filter.ref == "A1:C2" and book["Jobs"].freeze_panes == "A2"
    logs = book["Logs (2)"]
    assert [c.value for c in logs[2]] == [
        "job-1",
        1,
        0,
        BASE.replace(tzinfo=None),
        "info",
        "=line 0",
    ]
    assert logs["F2"].data_type == "s"
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows() if r[0].value}
    assert summary["Jobs"] == 7 and summary["Log lines"] == 6
    assert summary["status"] == '["completed"]'


async def test_an_empty_export_has_its_sheets_and_headers(
    api: TestClient, exporter: TestClient
) -> None:
    info = await finished_export(api, {"format": "excel", "includeLogs": True})
    assert info["rows"] == 0
    book = read_xlsx(await download(exporter, info["url"]))
    assert book.sheetnames == ["Summary", "Jobs", "Logs"]
    assert book["Jobs"].max_row == 1 and book["Jobs"]["A1"].value == "id"


async def test_a_sheet_past_what_a_zip_member_holds_fails_the_export_with_a_reason(
    api: TestClient, exporter: TestClient, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(excel, "MAX_SHEET_BYTES", 4_000)  # 2 GiB, scaled down
    await seed(pg, [job_row(data={"blob": "x" * 500}) for _ in range(20)])
    info = await finished_export(api, {"format": "excel", "includeData": True})
    assert info["status"] == "failed" and "passes 2 GiB of XML" in info["error"], info
    info = await finished_export(api, {"format": "excel", "fields": ["id"]})
    assert info["status"] == "done" and info["rows"] == 20  # short rows still fit
