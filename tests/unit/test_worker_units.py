"""Small pure pieces of the worker: envelope parsing, registry, queue specs, control, events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgpack
import pytest
from jobdeck.events import Event, EventType, decode, encode
from jobdeck.queues import JobSpec
from jobdeck_worker import lifecycle
from jobdeck_worker.context import JobContext
from jobdeck_worker.control import parse_control
from jobdeck_worker.envelope import Envelope
from jobdeck_worker.errors import MalformedJob
from jobdeck_worker.lifecycle import JobRun
from jobdeck_worker.registry import TaskRegistry
from jobdeck_worker.runtime import QueueSpec


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, job_id: str, event: Event, coalesce: bool = False) -> None:
        self.events.append(event)

    async def backpressure(self) -> None:
        return None


def test_envelope_round_trips_what_jobspec_produces() -> None:
    spec = JobSpec(queue="q", name="t", data={"a": 1}, max_attempts=4, attempt_offset=2)
    env = Envelope.parse(msgpack.unpackb(spec.packed_envelope()))
    assert env == Envelope(
        name="t",
        data={"a": 1},
        max_attempts=4,
        backoff_ms=1000,
        timeout_s=300.0,
        attempt_offset=2,
        priority=0,
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "must be a map"),
        ({"data": 1}, "no task name"),
        ({"name": ""}, "no task name"),
        ({"name": "t", "max_attempts": "3"}, "'max_attempts' must be a number"),
        ({"name": "t", "timeout_s": "soon"}, "'timeout_s' must be a number"),
    ],
)
def test_malformed_envelopes_fail_with_a_clear_message(raw: Any, message: str) -> None:
    with pytest.raises(MalformedJob, match=message):
        Envelope.parse(raw)


def test_envelope_defaults_and_clamps() -> None:
    env = Envelope.parse({"name": "t", "max_attempts": 0, "backoff_ms": -1, "timeout_s": None})
    assert env.max_attempts == 1 and env.backoff_ms == 0 and env.timeout_s is None
    assert env.attempt_offset == 0 and env.data is None


def test_registry_refuses_sync_functions_and_duplicates() -> None:
    registry = TaskRegistry()

    @registry.task("a")
    async def a(job: JobContext) -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", a)
    with pytest.raises(TypeError, match="async function"):
        registry.add("b", lambda job: None)  # type: ignore[arg-type, return-value]
    assert registry.get("a", "any") is a
    assert registry.get("missing", "any") is None


def test_registry_limits_a_task_to_its_queues() -> None:
    registry = TaskRegistry()

    @registry.task("only-reports", queues=["reports"])
    async def t(job: JobContext) -> None: ...

    assert registry.get("only-reports", "reports") is t
    assert registry.get("only-reports", "emails") is None
    assert registry.names("emails") == []


@pytest.mark.parametrize(
    ("text", "spec"),
    [("reports", QueueSpec("reports", 10)), ("reports:4", QueueSpec("reports", 4))],
)
def test_queue_spec_parses_name_and_concurrency(text: str, spec: QueueSpec) -> None:
    assert QueueSpec.parse(text) == spec


@pytest.mark.parametrize("text", ["", ":3", "q:0", "q:x", "q:-1"])
def test_queue_spec_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        QueueSpec.parse(text)


def test_control_messages_parse() -> None:
    assert parse_control("pause:reports") == ("pause", "reports")
    assert parse_control("abort:a:b") == ("abort", "a:b")
    assert parse_control("explode:reports") is None
    assert parse_control("pause:") is None
    assert parse_control("pause") is None


def test_results_become_bounded_json() -> None:
    assert lifecycle.jsonable(None) is None
    assert lifecycle.jsonable((1, 2)) == [1, 2]
    assert lifecycle.jsonable({"when": {1, 2}}) == {"when": "{1, 2}"}
    assert lifecycle.jsonable(float("nan")) == "nan"
    big = lifecycle.jsonable({"blob": "x" * 100_000})
    assert big["truncated"] is True
    json.dumps(big)


def test_lifecycle_events_decode_and_carry_durations() -> None:
    run = JobRun("j", "q", "t", 2, 3, started_at=1_000)
    for event in (
        lifecycle.started(run, "w1"),
        lifecycle.completed(run, {"ok": True}, finished_at=1_250),
        lifecycle.failed(run, lifecycle.error_fields(ValueError("bad")), finished_at=1_250),
        lifecycle.retrying(run, lifecycle.error_fields(ValueError("x")), 5_000, 1_250),
        lifecycle.handed_back(run, 1_250),
        lifecycle.cancelled(run, "ann", 1_250),
    ):
        assert decode(encode(event)) == event
        assert event.attempt == 2
    done = lifecycle.completed(run, None, finished_at=1_250)
    assert done.fields["duration_ms"] == 250
    never_ran = lifecycle.cancelled(JobRun("j", "q", "t", 1, 3, started_at=None), None, 1_250)
    assert never_ran.fields["started_at"] is None
    assert lifecycle.handed_back(run, 1_250).fields["error_type"] == "WorkerShutdown"


async def test_job_context_numbers_log_lines_and_checks_input() -> None:
    sink = ListSink()
    job = JobContext(JobRun("j", "q", "t", 1, 3, 1), {"x": 1}, sink)
    job.log("info", "one")
    job.log("WARN", "two")
    await job.progress(150, "done")
    await job.progress(-3)
    with pytest.raises(ValueError, match="log level"):
        job.log("loud", "nope")
    with pytest.raises(ValueError, match="finite number"):
        await job.progress(float("inf"))
    with pytest.raises(ValueError, match="finite number"):
        await job.progress(True)
    logs = [e for e in sink.events if e.type is EventType.LOG]
    assert [(e.fields["seq"], e.fields["level"]) for e in logs] == [(1, "info"), (2, "warning")]
    progress = [e.fields["progress"] for e in sink.events if e.type is EventType.PROGRESS]
    assert progress == [100, 0]
    assert job.data == {"x": 1} and job.attempt == 1 and job.queue == "q"
    await asyncio.sleep(0)


def test_the_events_schema_covers_every_event_type() -> None:
    import jsonschema
    from jobdeck.events import EventType

    schema = json.loads(
        (__import__("pathlib").Path(__file__).parents[2] / "proto/events.schema.json").read_text()
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]} == {str(t) for t in EventType}
    validator = jsonschema.Draft202012Validator(schema)
    alert = {
        "v": 1,
        "type": "alert",
        "ts": 1,
        "queue": "*",
        "severity": "warning",
        "kind": "recorder_lag",
        "state": "raised",
        "value": 10,
        "threshold": 5,
        "message": "m",
    }
    assert validator.is_valid(alert)
    assert not validator.is_valid({**alert, "v": 2})
    assert not validator.is_valid({**alert, "type": "exploded"})
