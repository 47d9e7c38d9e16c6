"""Pure parts of exports: throttle decisions, signed URLs, columns, file names, socket events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from jobdeck.events import EventType
from jobdeck.exports import ExportFormat, export_event
from jobdeck_api.exports_api import ExportLimits, default_filename, throttle_wait
from jobdeck_exporter.columns import Kind, layout, neutralised
from jobdeck_exporter.signing import UrlSigner
from jobdeck_gateway.protocol import SocketEvent, outgoing

from tests.support.gateway import validate

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_throttle_counts_in_flight_then_the_hour() -> None:
    limits = ExportLimits(in_flight=2, per_hour=3, busy_retry_s=5)
    assert throttle_wait(1, [NOW] * 2, NOW, limits) is None
    assert throttle_wait(2, [], NOW, limits) == (5, "2 of your exports are still running")
    recent = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=10), NOW]
    wait, why = throttle_wait(0, recent, NOW, limits) or (0, "")
    assert wait == 600 and "3 exports an hour" in why  # the oldest leaves the hour in 10 min


def test_signed_urls_refuse_tampering_and_expiry() -> None:
    signer = UrlSigner("k")
    url = signer.url("http://x", "abc/1/f.csv", 2_000)
    assert url.startswith("http://x/exports/abc/1/f.csv?expires=2000&sig=")
    sig = url.rsplit("sig=", 1)[1]
    assert signer.refusal("abc/1/f.csv", "2000", sig, now=1_999) is None
    assert signer.refusal("abc/1/f.csv", "2000", sig, now=2_000) == "link expired"
    assert signer.refusal("abc/1/g.csv", "2000", sig, now=0) == "bad signature"
    assert signer.refusal("abc/1/f.csv", "2001", sig, now=0) == "bad signature"
    assert signer.refusal("abc/1/f.csv", None, sig, now=0) == "missing or malformed signature"
    assert UrlSigner("other").refusal("abc/1/f.csv", "2000", sig, now=0) == "bad signature"


def test_layout_follows_fields_and_include_data() -> None:
    default = layout(None, include_data=False, include_logs=False)
    assert default.names[:3] == ["id", "queue", "jobName"] and "data" not in default.names
    chosen = layout(["status", "createdAt"], include_data=True, include_logs=True)
    assert chosen.names == ["status", "createdAt", "data", "options", "result", "logs"]
    kinds = [c.kind for c in chosen.columns]
    assert kinds == [Kind.TEXT, Kind.TIME, Kind.JSON, Kind.JSON, Kind.JSON]
    sql = neutralised("name")
    assert "ascii(name) IN (9, 10, 13, 43, 45, 61, 64) THEN '''' || name" in sql


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        (None, ExportFormat.EXCEL, "jobs-20261130-120000-abcdef12.xlsx"),
        ("failed last week", ExportFormat.CSV, "failed last week.csv"),
        ("report.csv", ExportFormat.CSV, "report.csv"),
        ("report.csv", ExportFormat.NDJSON, "report.csv.ndjson"),
    ],
)
def test_default_filenames(name: str | None, fmt: ExportFormat, expected: str) -> None:
    assert default_filename(fmt, "abcdef1234", NOW, name) == expected


@pytest.mark.parametrize(
    ("etype", "fields", "socket_event"),
    [
        (EventType.EXPORT_PROGRESS, {"rows_done": 5, "rows_estimated": 10},
         SocketEvent.EXPORT_PROGRESS),
        (EventType.EXPORT_COMPLETED,
         {"rows": 3, "bytes": 9, "url": "/exports/x", "format": "csv", "filename": "x.csv",
          "expires_at": 1},
         SocketEvent.EXPORT_COMPLETED),
        (EventType.EXPORT_FAILED, {"error": "storage failed"}, SocketEvent.EXPORT_FAILED),
    ],
)  # fmt: skip
def test_export_events_go_to_the_requesters_room_only(
    etype: EventType, fields: dict[str, object], socket_event: SocketEvent
) -> None:
    out = outgoing(export_event(etype, "e1", "alice", **fields), "7-0")
    assert out.rooms == ("user:alice",) and not out.to_everyone
    [(name, payload)] = out.messages
    assert name is socket_event and payload["exportId"] == "e1"
    validate(str(name), payload)
    if etype is EventType.EXPORT_PROGRESS:
        assert payload["progress"] == 0.5
