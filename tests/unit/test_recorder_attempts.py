"""The attempt history's rules, without Postgres."""

from __future__ import annotations

from typing import Any

from jobdeck.events import Event, EventType
from jobdeck_recorder.attempts import (
    AttemptRow,
    apply_attempt,
    earlier_in_stream,
    parse_stream_id,
)


def event(etype: EventType, **fields: Any) -> Event:
    return Event(etype, queue="q", job_id="j", attempt=2, name="t", ts=1, fields=fields)


STARTED = event(EventType.STARTED, started_at=100, worker="w1", max_attempts=3)
FAILED = event(
    EventType.RETRYING,
    started_at=100,
    finished_at=150,
    error_type="ValueError",
    error_message="bad",
    traceback="Traceback...",
    retry_at=1150,
)
LOST = event(
    EventType.FAILED,
    started_at=100,
    finished_at=900,
    error_type="JobLost",
    error_message="gone",
)
DONE = event(EventType.COMPLETED, started_at=100, finished_at=140, result=1)


def test_stream_ids_parse_and_order() -> None:
    assert parse_stream_id("1700000000000-3") == (1700000000000, 3)
    assert parse_stream_id("nonsense") is None and parse_stream_id(None) is None
    assert earlier_in_stream((5, 0), (5, 1)) and not earlier_in_stream((5, 1), (5, 1))
    assert not earlier_in_stream(None, (5, 1)) and not earlier_in_stream((5, 1), None)


def test_an_attempt_records_who_ran_it_and_how_it_ended() -> None:
    row = AttemptRow("j", 2)
    assert apply_attempt(row, STARTED, (1, 0))
    assert (row.worker, row.started_at, row.outcome) == ("w1", 100, "running")
    assert not apply_attempt(row, STARTED, (1, 0))  # a duplicate changes nothing
    assert apply_attempt(row, FAILED, (2, 0))
    assert (row.outcome, row.finished_at, row.error_type) == ("retrying", 150, "ValueError")
    assert row.error_traceback == "Traceback..."


def test_of_two_finals_the_earlier_in_the_stream_wins_in_any_arrival_order() -> None:
    late_first = AttemptRow("j", 2)
    apply_attempt(late_first, LOST, (9, 0))
    assert apply_attempt(late_first, DONE, (3, 0))  # earlier in the stream: replaces
    assert (late_first.outcome, late_first.error_type) == ("completed", None)
    assert not apply_attempt(late_first, LOST, (9, 0))  # redelivered: still loses

    in_order = AttemptRow("j", 2)
    apply_attempt(in_order, DONE, (3, 0))
    assert not apply_attempt(in_order, LOST, (9, 0))
    assert in_order.outcome == "completed"


def test_without_stream_ids_the_first_final_recorded_stays() -> None:
    row = AttemptRow("j", 2)
    apply_attempt(row, LOST, None)
    assert not apply_attempt(row, DONE, None)
    assert row.error_type == "JobLost"


def test_a_final_arriving_before_its_start_still_learns_the_worker() -> None:
    row = AttemptRow("j", 2)
    apply_attempt(row, DONE, (3, 0))
    assert row.worker is None and row.started_at == 100
    assert apply_attempt(row, STARTED, (1, 0))
    assert row.worker == "w1" and row.outcome == "completed"
