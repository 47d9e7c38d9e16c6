"""The export contract between the API (which accepts requests) and the exporter (which runs them).

A request is a row of ``exports`` plus one entry on the Redis stream ``jobdeck:exports``
(field ``op`` = ``export`` and ``id``); exporter replicas share the stream through the
consumer group ``exporters``. Deleting an export is an entry too (``op`` = ``delete``,
``key``), since only the exporter talks to storage. When an export ends, the exporter
pushes its status onto ``done_key(id)``, which the API blocks on for a few seconds so
that a short export answers the request itself; and it publishes ``export.*`` events on
``jobdeck:events`` for the gateway to pass to the requester's sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from jobdeck.events import Event, EventType
from jobdeck.jobsql import DATA_FIELDS, SUMMARY_FIELDS
from jobdeck.settings import parse_int

EXPORT_STREAM = "jobdeck:exports"
EXPORT_GROUP = "exporters"
EXPORT_STREAM_MAXLEN = 100_000
DONE_TTL_S = 300
# Most rows one export may hold; the API refuses larger requests up front (422), the
# exporter fails one whose snapshot turns out larger. Both read the same variable.
MAX_ROWS_ENV = "JOBDECK_EXPORT_MAX_ROWS"
DEFAULT_MAX_ROWS = 5_000_000
MAX_ROWS_LIMIT = 1_000_000_000


def max_rows_from_env(env: Mapping[str, str]) -> int:
    """``JOBDECK_EXPORT_MAX_ROWS``, or a ConfigError saying what it accepts."""
    raw = env.get(MAX_ROWS_ENV)
    return DEFAULT_MAX_ROWS if raw is None else parse_int(MAX_ROWS_ENV, raw, 1, MAX_ROWS_LIMIT)


# Stream events about exports are not about a queue; "*" is the events' system-wide queue.
EVENT_QUEUE = "*"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    NDJSON = "ndjson"
    EXCEL = "excel"

    @property
    def extension(self) -> str:
        return "xlsx" if self is ExportFormat.EXCEL else self.value

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]


_CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.EXCEL: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINISHED = frozenset({ExportStatus.DONE, ExportStatus.FAILED})

# Public field name -> jobs column: a search item's fields, which an export may select.
SUMMARY_COLUMN_OF: dict[str, str] = {name: column for column, name in SUMMARY_FIELDS}
DATA_COLUMN_OF: dict[str, str] = {name: column for column, name in DATA_FIELDS}
EXPORT_FIELDS: tuple[str, ...] = tuple(SUMMARY_COLUMN_OF) + tuple(DATA_COLUMN_OF)


def done_key(export_id: str) -> str:
    return f"jobdeck:exports:done:{export_id}"


async def request_export(redis: Redis, export_id: str) -> None:
    """Hand an export (its row already inserted) to the exporter replicas."""
    await redis.xadd(
        EXPORT_STREAM,
        {"op": "export", "id": export_id},
        maxlen=EXPORT_STREAM_MAXLEN,
        approximate=True,
    )


async def request_delete(redis: Redis, storage_key: str) -> None:
    """Ask the exporter to remove a stored file (the API never talks to storage itself)."""
    await redis.xadd(
        EXPORT_STREAM,
        {"op": "delete", "key": storage_key},
        maxlen=EXPORT_STREAM_MAXLEN,
        approximate=True,
    )


def export_event(kind: EventType, export_id: str, by: str, **fields: Any) -> Event:
    """An ``export.*`` stream event; ``by`` (the requester) decides who receives it."""
    return Event(type=kind, queue=EVENT_QUEUE, fields={"export_id": export_id, "by": by, **fields})
