"""Exports end to end in one process: the API accepts, the exporter writes, real readers read.

Every format is opened by a real reader (csv, json, openpyxl); rows equal what search
shows for the same filters and token; formula-like text stays text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jobdeck_exporter.columns import Kind, json_value

from tests.support.api import BASE, auth, job_row, seed
from tests.support.exporter import (
    download,
    finished_export,
    read_csv,
    read_json,
    read_ndjson,
    read_xlsx,
)
from tests.support.processes import wait_for

EVIL = '=HYPERLINK("http://evil.example","click")'
# Data texts: a formula-like one, and one with what a COPY line could trip on.
TEXTS = {3: "+1 call me", 5: 'a "quote", a \\ and\na line break, \x01\x02\t\r controls'}


@pytest.fixture
async def jobs(pg: Any) -> list[dict[str, Any]]:
    rows = []
    statuses = ["completed", "failed", "waiting", "active"]
    for i in range(40):
        rows.append(
            job_row(
                status=statuses[i % 4],
                queue=("emails", "reports")[i % 2],
                name=EVIL if i == 1 else ("send-email" if i % 2 == 0 else "build-report"),
                created_at=BASE + timedelta(hours=i),
                data={"n": i, "text": TEXTS.get(i, "plain")},
            )
        )
    rows = await seed(pg, rows)
    await pg.executemany(
        "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message) VALUES ($1,1,$2,$3,$4,$5)",
        [
            (rows[1]["id"], 1, BASE, "info", "starting"),
            (rows[1]["id"], 2, BASE + timedelta(seconds=1), "error", "-1 went wrong"),
        ],
    )
    return rows


async def search_ids(api: TestClient, query: dict[str, Any], headers: dict[str, str]) -> list[str]:
    resp = await api.get("/api/v1/jobs/search", params={**query, "limit": 200}, headers=headers)
    body = await resp.json()
    assert resp.status == 200, body
    return [item["id"] for item in body["items"]]


async def test_csv_holds_what_search_shows_with_formulas_neutralised(
    api: TestClient, exporter: TestClient, jobs: list[dict[str, Any]]
) -> None:
    filters = {"status": ["completed", "failed"], "queues": ["emails", "reports"]}
    info = await finished_export(
        api, {"format": "csv", "filters": filters, "sortBy": "createdAt", "sortOrder": "asc"}
    )
    assert info["status"] == "done", info
    assert info["url"] and info["rows"] == 20 and info["bytes"] > 0
    data = await download(exporter, info["url"])
    assert data.startswith(b"id,queue,jobName,status,") and data.count(b"\n") == 21
    rows = read_csv(data)
    expected = await search_ids(
        api,
        {"status": "completed,failed", "queues": "emails,reports", "sortOrder": "asc"},
        auth(),
    )
    assert [r["id"] for r in rows] == expected
    evil = next(r for r in rows if r["id"] == jobs[1]["id"])
    assert evil["jobName"] == "'" + EVIL  # neutralised: a spreadsheet shows it as text
    first = rows[0]
    assert first["createdAt"] == jobs[0]["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "data" not in first  # includeData is off


async def test_csv_neutralises_every_formula_start_in_the_search_order(
    api: TestClient, exporter: TestClient, pg: Any
) -> None:
    """Each of = + - @ tab CR LF at the start of a cell gets a ``'``, a negative number in a
    JSON column too; ties on createdAt keep the search's id order (the neutralised ids sort
    differently: ``'`` comes before ``(``)."""
    starts = ["=", "+", "-", "@", "\t", "\r", "\n"]
    ids = ["-1", "(2", "=3", "a4", "+5", "@6", "b7", "c8"]
    at = BASE + timedelta(days=30)
    rows = [
        job_row(id=id_, queue="formulas", name=name, created_at=at, result=result)
        for id_, name, result in zip(
            ids, [*starts, "plain"], [-5, "-text", {"a": -1}, [-1], 1.5, None, True, 0],
            strict=True,
        )
    ]  # fmt: skip
    await seed(pg, rows)
    filters = {"queues": ["formulas"]}
    info = await finished_export(api, {"format": "csv", "filters": filters, "includeData": True})
    exported = read_csv(await download(exporter, info["url"]))
    searched = await search_ids(api, {"queues": "formulas"}, auth())
    assert len(searched) == len(ids)

    def neutral(text: str) -> str:
        return "'" + text if text[:1] in starts else text

    assert [r["id"] for r in exported] == [neutral(i) for i in searched]
    names = {r["id"]: r["jobName"] for r in exported}
    assert [names[neutral(r["id"])] for r in rows] == ["'" + s for s in starts] + ["plain"]
    results = [r["result"] for r in sorted(exported, key=lambda r: ids.index(r["id"].lstrip("'")))]
    assert results == ["'-5", '"-text"', '{"a": -1}', "[-1]", "1.5", "", "true", "0"]


async def test_fields_data_and_logs_in_json_and_ndjson(
    api: TestClient, exporter: TestClient, jobs: list[dict[str, Any]]
) -> None:
    body = {
        "format": "json",
        "filters": {"search": "HYPERLINK"},
        "fields": ["id", "jobName", "status", "duration", "createdAt"],
        "includeData": True,
        "includeLogs": True,
    }
    info = await finished_export(api, body)
    items = read_json(await download(exporter, info["url"]))
    assert len(items) == 1
    item = items[0]
    assert list(item) == [
        "id", "jobName", "status", "duration", "createdAt", "data", "options", "result", "logs"
    ]  # fmt: skip
    assert item["jobName"] == EVIL  # JSON is not a spreadsheet: text exactly as it is
    assert item["data"] == {"n": 1, "text": "plain"}
    assert [line["message"] for line in item["logs"]] == ["starting", "-1 went wrong"]
    assert item["logs"][0]["ts"] == "2024-03-01T00:00:00.000Z"

    info = await finished_export(api, {**body, "format": "ndjson", "filters": {}})
    lines = read_ndjson(await download(exporter, info["url"]))
    assert len(lines) == len(jobs)
    assert {line["id"] for line in lines} == {j["id"] for j in jobs}
    line = next(line for line in lines if line["id"] == jobs[5]["id"])
    job = jobs[5]
    assert line == {
        "id": job["id"], "jobName": "build-report", "status": "failed",
        "duration": job["duration_ms"],
        "createdAt": job["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "data": {"n": 5, "text": TEXTS[5]},  # one line, the text intact
        "options": job["options"], "result": None, "logs": [],
    }  # fmt: skip

    info = await finished_export(api, {**body, "filters": {"search": "no such job"}})
    assert info["rows"] == 0 and read_json(await download(exporter, info["url"])) == []


@pytest.mark.parametrize(
    ("kind", "sql", "expected"),
    [
        (
            Kind.TEXT,
            "E'a \"quote\", a \\\\, \\n\\t\\x01 and \u00e9'",
            'a "quote", a \\, \n\t\x01 and \u00e9',
        ),
        (Kind.TEXT, "NULL::text", None),
        (Kind.INT, "-7::bigint", -7),
        (Kind.FLOAT, "0.25::real", 0.25),
        (Kind.FLOAT, "'NaN'::real", "NaN"),  # not a JSON number: a string, as to_json has it
        (Kind.TIME, "timestamptz '2024-03-01 01:02:03.456789+02'", "2024-02-29T23:02:03.456Z"),
        (Kind.TIME, "NULL::timestamptz", None),
        (Kind.JSON, '\'{"a": [1, "x\\\\y"]}\'::jsonb', {"a": [1, "x\\y"]}),
    ],
)
async def test_json_values_made_by_postgres_parse_back(
    pg: Any, kind: Kind, sql: str, expected: Any
) -> None:
    text = await pg.fetchval(f"SELECT {json_value('v', kind)} FROM (SELECT {sql} AS v) t")
    assert json.loads(text) == expected


async def test_excel_workbook_sheets_dates_and_inert_text(
    api: TestClient, exporter: TestClient, jobs: list[dict[str, Any]]
) -> None:
    body = {
        "format": "excel",
        "filters": {"queues": ["emails"]},
        "includeData": True,
        "includeLogs": True,
        "filename": "weekly failures",
    }
    info = await finished_export(api, body)
    assert info["filename"] == "weekly failures.xlsx"
    book = read_xlsx(await download(exporter, info["url"]))
    assert book.sheetnames == ["Summary", "Jobs", "Logs"]
    sheet = book["Jobs"]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["id", "queue", "jobName", "status"] and "data" in header
    assert sheet.max_row == 1 + 20
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    created = header.index("createdAt")
    cell = sheet.cell(row=2, column=created + 1)
    assert isinstance(cell.value, datetime)  # a real date cell
    newest = max(j["created_at"] for j in jobs if j["queue"] == "emails")
    assert cell.value == newest.astimezone(UTC).replace(tzinfo=None)
    data_col = header.index("data") + 1
    texts = [sheet.cell(row=r, column=data_col).value for r in range(2, sheet.max_row + 1)]
    assert all(isinstance(t, str) and t.startswith("{") for t in texts)
    summary = {row[0].value: row[1].value for row in book["Summary"].iter_rows() if row[0].value}
    assert summary["Requested by"] == "admin-user"
    assert summary["Jobs"] == 20
    assert summary["queues"] == '["emails"]'
    logs = book["Logs"]
    assert [c.value for c in logs[1]] == ["jobId", "attempt", "seq", "ts", "level", "message"]
    assert logs.max_row == 1  # the jobs with logs are in "reports"

    info = await finished_export(api, {"format": "excel", "filters": {"search": "HYPERLINK"}})
    book = read_xlsx(await download(exporter, info["url"]))
    names = [c.value for c in book["Jobs"][2]]
    assert EVIL in names  # kept as text, not run as a formula
    assert book["Jobs"]["C2"].data_type == "s"


async def test_scope_limits_an_export_to_the_tokens_queues(
    api: TestClient, exporter: TestClient, jobs: list[dict[str, Any]]
) -> None:
    viewer = auth("viewer", ["reports"], sub="vera")
    info = await finished_export(api, {"format": "ndjson"}, viewer)
    lines = read_ndjson(await download(exporter, info["url"]))
    assert {line["queue"] for line in lines} == {"reports"} and len(lines) == 20
    # asking for a queue outside the token gives an empty export, as search would
    info = await finished_export(api, {"format": "csv", "filters": {"queues": ["emails"]}}, viewer)
    assert info["rows"] == 0 and read_csv(await download(exporter, info["url"])) == []


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"format": "pdf"}, "format"),
        ({"format": "csv", "fields": ["id", "secret"]}, "fields"),
        ({"format": "csv", "fields": ["data"]}, "body"),  # "fields: data need includeData"
        ({"format": "csv", "filters": {"status": ["nope"]}}, "filters.status"),
        ({"format": "csv", "filters": {"startDate": "yesterday"}}, "filters.startDate"),
        ({"format": "csv", "filters": {"colour": "red"}}, "filters.colour"),
        ({"format": "csv", "sortBy": "colour"}, "body"),
        ({"format": "csv", "filename": "../etc/passwd"}, "filename"),
    ],
)
async def test_bad_requests_are_422_naming_the_parameter(
    api: TestClient, body: dict[str, Any], name: str
) -> None:
    resp = await api.post("/api/v1/jobs/export", json=body, headers=auth())
    problem = await resp.json()
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert any(e["name"].split(".0")[0] == name for e in problem["errors"]), problem


async def test_export_list_get_and_delete(
    api: TestClient, exporter: TestClient, jobs: list[dict[str, Any]]
) -> None:
    mine = auth("viewer", sub="sam")
    info = await finished_export(api, {"format": "csv"}, mine)
    resp = await api.get("/api/v1/jobs/exports", headers=mine)
    assert [e["id"] for e in (await resp.json())["items"]] == [info["id"]]
    other = auth("viewer", sub="olga")
    resp = await api.get(info["statusUrl"], headers=other)
    assert resp.status == 404  # not hers
    resp = await api.get("/api/v1/jobs/exports", headers=other)
    assert (await resp.json())["items"] == []
    resp = await api.get("/api/v1/jobs/exports", headers=auth("admin"))
    assert info["id"] in [e["id"] for e in (await resp.json())["items"]]

    resp = await api.delete(info["statusUrl"], headers=mine)
    assert resp.status == 204
    assert (await api.get(info["statusUrl"], headers=mine)).status == 404

    async def file_gone() -> bool:
        return (await exporter.get(info["url"])).status == 404

    await wait_for(file_gone, timeout=10, what="the deleted export's file to go")
