import msgpack
import pytest
from jobdeck.events import Event, EventType, MalformedEvent, Phase, decode, encode


def test_round_trip_keeps_every_field() -> None:
    event = Event(
        type=EventType.COMPLETED,
        queue="q",
        job_id="j1",
        attempt=2,
        name="task",
        ts=123,
        fields={"started_at": 100, "finished_at": 123, "duration_ms": 23, "result": {"a": 1}},
    )
    assert decode(encode(event)) == event


def test_version_orders_attempts_before_phases() -> None:
    def ev(t: EventType, attempt: int) -> Event:
        return Event(type=t, queue="q", job_id="j", attempt=attempt)

    assert ev(EventType.ADDED, 1).phase is Phase.QUEUED
    assert ev(EventType.STARTED, 1).version < ev(EventType.COMPLETED, 1).version
    assert ev(EventType.FAILED, 1).version < ev(EventType.ADDED, 2).version


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xc1not msgpack", "not msgpack"),
        (msgpack.packb([1, 2]), "not a map"),
        (msgpack.packb({"v": 1, "type": "exploded", "ts": 1, "queue": "q"}), "unknown event type"),
        (msgpack.packb({"v": 9, "type": "added", "ts": 1, "queue": "q"}), "schema version"),
        (msgpack.packb({"v": 1, "type": "started", "ts": 1, "queue": "q"}), "job_id"),
        (
            msgpack.packb(
                {"v": 1, "type": "started", "ts": 1, "queue": "q", "job_id": "j", "attempt": 1}
            ),
            "missing field(s) started_at",
        ),
    ],
)
def test_malformed_entries_say_what_is_wrong(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode(raw)
