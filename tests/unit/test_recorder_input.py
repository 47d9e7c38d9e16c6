"""The recorder's input handling: entry decoding, field checks, JSON for Postgres, config."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from jobdeck.events import Event, EventType, JobStatus, encode
from jobdeck.settings import ConfigError
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.consumer import decode_batch
from jobdeck_recorder.fold import KEEP, JobRow
from jobdeck_recorder.store import QUERIES, json_param, row_doc
from jobdeck_recorder.validate import InvalidField, check


def event(etype: EventType, **fields: Any) -> Event:
    return Event(type=etype, queue="q", job_id="j", attempt=1, name="t", ts=1_000, fields=fields)


GOOD = {
    EventType.ADDED: {"status": "waiting", "priority": 1, "max_attempts": 3, "run_at": None},
    EventType.STARTED: {"started_at": 5, "worker": "w", "max_attempts": 3},
    EventType.PROGRESS: {"progress": 12.5, "message": None},
    EventType.LOG: {"seq": 1, "level": "info", "message": "m"},
    EventType.COMPLETED: {"started_at": 5, "finished_at": 9, "duration_ms": 4, "result": [1]},
    EventType.FAILED: {
        "started_at": 5,
        "finished_at": 9,
        "duration_ms": 4,
        "error_type": "E",
        "error_message": "m",
        "traceback": None,
    },
    EventType.RETRYING: {
        "started_at": 5,
        "finished_at": 9,
        "error_type": "E",
        "error_message": "m",
        "retry_at": 99,
    },
    EventType.CANCELLED: {"started_at": None, "finished_at": 9, "by": None},
}


@pytest.mark.parametrize("etype", list(GOOD))
def test_well_typed_events_pass(etype: EventType) -> None:
    check(event(etype, **GOOD[etype]))


@pytest.mark.parametrize(
    ("etype", "override"),
    [
        (EventType.ADDED, {"status": "active"}),
        (EventType.ADDED, {"priority": "high"}),
        (EventType.ADDED, {"options": ["not", "a", "map"]}),
        (EventType.STARTED, {"started_at": "noon"}),
        (EventType.STARTED, {"worker": 7}),
        (EventType.PROGRESS, {"progress": float("nan")}),
        (EventType.PROGRESS, {"progress": True}),
        (EventType.LOG, {"seq": 2**31}),
        (EventType.LOG, {"level": "loud"}),
        (EventType.COMPLETED, {"duration_ms": -1}),
        (EventType.FAILED, {"finished_at": 10**20}),
        (EventType.RETRYING, {"retry_at": None}),
    ],
)
def test_ill_typed_fields_are_refused(etype: EventType, override: dict[str, Any]) -> None:
    with pytest.raises(InvalidField):
        check(event(etype, **{**GOOD[etype], **override}))


def test_decode_batch_sorts_good_from_bad_and_keeps_every_id() -> None:
    good = encode(event(EventType.LOG, **GOOD[EventType.LOG]))
    entries = [
        (b"1-0", {b"e": good}),
        (b"1-1", {b"e": b"\xc1"}),
        (b"1-2", {b"e": msgpack.packb({"v": 1, "type": "boom", "ts": 1, "queue": "q"})}),
        (b"1-3", {b"e": msgpack.packb({"v": 1, "type": "log", "ts": 1, "queue": "q"})}),
        (b"1-4", {b"x": b"y"}),
        (b"1-5", None),  # trimmed from the stream while pending
        (b"1-6", {b"e": encode(event(EventType.LOG, seq=0.5, level="info", message="m"))}),
    ]
    batch = decode_batch(entries)  # type: ignore[arg-type]
    assert [d.entry_id for d in batch.good] == ["1-0"]
    assert [(r.entry_id, r.reason) for r in batch.bad] == [
        ("1-1", "not_msgpack"),
        ("1-2", "unknown_type"),
        ("1-3", "invalid_event"),
        ("1-4", "no_payload"),
        ("1-6", "invalid_field"),
    ]
    assert len(batch.ids) == len(entries)


def test_json_param_cleans_what_postgres_would_refuse() -> None:
    row = JobRow(
        id="j",
        queue="q\x00",
        name="n",
        status=JobStatus.WAITING,
        created_at=1,
        data={"x": float("inf"), "s": "a\x00b", 1: b"raw"},
        options=KEEP,
        result=None,
    )
    doc = json.loads(json_param([row_doc(row)]))[0]
    assert doc["queue"] == "q" and doc["data"] == {"x": None, "s": "ab", "1": "raw"}
    assert doc["keep_options"] is True and "options" not in doc
    assert doc["result"] is None and "keep_result" not in doc


def test_json_param_fast_path_keeps_text_as_is() -> None:
    row = JobRow(id="j", queue="q", name="ünïcode", status=JobStatus.ACTIVE, created_at=1)
    assert '"name":"ünïcode"' in json_param([row_doc(row)])


def test_queries_are_loaded_by_name() -> None:
    assert set(QUERIES) == {
        "lock_jobs",
        "attempts_of",
        "upsert_attempts",
        "update_jobs",
        "insert_jobs",
        "insert_logs",
        "unfinished_stale_first",
        "unfinished_stale_after",
        "retention_configs",
        "prune_jobs",
        "logs_pruned_until",
        "prune_logs",
        "save_logs_pruned_until",
        "ensure_log_partitions",
        "widen_spans",
        "drop_log_partitions",
        "tombstones",
        "prune_tombstones",
    }


def test_config_from_env() -> None:
    config = RecorderConfig.from_env(
        {"JOBDECK_RECORDER_BATCH_SIZE": "250", "JOBDECK_RECORDER_CLAIM_IDLE_MS": "1000"}
    )
    assert (config.batch_size, config.claim_idle_ms, config.group) == (250, 1000, "recorder")
    with pytest.raises(ConfigError, match="BATCH_SIZE"):
        RecorderConfig.from_env({"JOBDECK_RECORDER_BATCH_SIZE": "0"})
    with pytest.raises(ConfigError):
        RecorderConfig.from_env({"JOBDECK_RECORDER_BLOCK_MS": "soon"})
    with pytest.raises(ConfigError, match="DUTY_PCT"):
        RecorderConfig.from_env({"JOBDECK_RECORDER_RETENTION_DUTY_PCT": "101"})
