"""The janitor's decisions: what is lost, which attempt the loss ends, the event it writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from jobdeck.events import EventType, JobStatus, decode, encode
from jobdeck.settings import ConfigError
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.fold import fold
from jobdeck_recorder.janitor import (
    LOST,
    Candidate,
    lease_ms,
    lost_attempt,
    lost_event,
    next_cursor,
)
from jobdeck_recorder.validate import check

from tests.unit.test_recorder_fold import T0, added, completed, retrying, started

NOW = T0 + 600_000
UPDATED = datetime(2026, 1, 1, tzinfo=UTC)


def candidate(
    status: JobStatus, attempts: int, version: int, started_at: int | None = None, n: int = 0
) -> Candidate:
    return Candidate(
        id="j1",
        queue="q",
        name="task",
        status=status,
        attempts=attempts,
        version=version,
        updated_at=UPDATED + timedelta(seconds=n),
        started_at=started_at,
    )


@pytest.mark.parametrize(
    ("attempts", "version", "attempt"),
    [
        (0, 0, 1),  # placeholder row, nothing known
        (0, 16, 1),  # waiting: added of attempt 1
        (1, 17, 1),  # active in attempt 1
        (1, 19, 2),  # delayed after retrying attempt 1: attempt 2 was lost
        (2, 35, 3),
        (1, 32, 2),  # waiting again after a manual retry (added of attempt 2)
        (3, 33, 3),  # attempts ahead of version (never moves backwards)
    ],
)
def test_the_lost_attempt_is_the_current_one_or_the_one_waiting_to_run(
    attempts: int, version: int, attempt: int
) -> None:
    assert lost_attempt(attempts, version) == attempt


def test_the_event_of_a_lost_running_job_says_when_it_started() -> None:
    event = lost_event(candidate(JobStatus.ACTIVE, 1, 17, started_at=T0 + 100), NOW)
    assert event.type is EventType.FAILED and event.attempt == 1 and event.ts == NOW
    assert event.fields["started_at"] == T0 + 100
    assert event.fields["finished_at"] == NOW
    assert event.fields["duration_ms"] == NOW - T0 - 100
    assert event.fields["error_type"] == LOST == "JobLost"
    assert "no longer in Redis" in event.fields["error_message"]
    assert "active" in event.fields["error_message"]
    assert event.fields["traceback"] is None
    check(decode(encode(event)))  # a valid event the recorder accepts


def test_the_event_of_a_lost_queued_job_never_started() -> None:
    for status in (JobStatus.WAITING, JobStatus.DELAYED):
        event = lost_event(candidate(status, 0, 16, started_at=T0), NOW)
        assert event.fields["started_at"] is None and event.fields["duration_ms"] is None
        check(decode(encode(event)))


def test_folding_the_event_fails_the_row_whatever_unfinished_state_it_was_in() -> None:
    cases = [
        ([added()], JobStatus.WAITING, 1),
        ([added(status="delayed", run_at=T0 + 3_600_000)], JobStatus.DELAYED, 1),
        ([added(), started()], JobStatus.ACTIVE, 1),
        ([added(), started(), retrying()], JobStatus.DELAYED, 2),
    ]
    for events, before, attempt in cases:
        row = fold(None, events)
        assert row is not None and row.status is before
        job = candidate(row.status, row.attempts, row.version, row.started_at)
        after = fold(row, [lost_event(job, NOW)])
        assert after is not None
        assert (after.status, after.error_type, after.attempts) == (
            JobStatus.FAILED,
            "JobLost",
            attempt,
        )
        assert after.finished_at == NOW


def test_a_real_final_event_ahead_of_the_janitors_wins() -> None:
    row = fold(None, [added(), started()])
    assert row is not None
    job = candidate(row.status, row.attempts, row.version, row.started_at)
    after = fold(row, [completed(), lost_event(job, NOW)])
    assert after is not None and after.status is JobStatus.COMPLETED


def test_passes_page_through_the_rows_then_start_over() -> None:
    rows = [candidate(JobStatus.WAITING, 0, 16, n=n) for n in range(3)]
    assert next_cursor(rows, 3) == (rows[-1].updated_at, "j1")
    assert next_cursor(rows, 4) is None
    assert next_cursor([], 1) is None


def test_janitor_settings_come_from_the_environment() -> None:
    config = RecorderConfig.from_env(
        {
            "JOBDECK_RECORDER_JANITOR_INTERVAL_MS": "1000",
            "JOBDECK_RECORDER_LOST_AFTER_MS": "2000",
            "JOBDECK_RECORDER_LOST_CONFIRM_MS": "0",
            "JOBDECK_RECORDER_JANITOR_BATCH": "50",
        }
    )
    assert (config.janitor_interval_ms, config.lost_after_ms) == (1000, 2000)
    assert (config.lost_confirm_ms, config.janitor_batch) == (0, 50)
    assert RecorderConfig().lost_after_ms == 300_000
    with pytest.raises(ConfigError, match="JANITOR_BATCH"):
        RecorderConfig.from_env({"JOBDECK_RECORDER_JANITOR_BATCH": "0"})


def test_the_lease_outlives_a_pass_and_its_confirmation_wait() -> None:
    config = RecorderConfig(janitor_interval_ms=30_000, lost_confirm_ms=15_000)
    assert lease_ms(config) > config.janitor_interval_ms + config.lost_confirm_ms
    assert lease_ms(RecorderConfig(janitor_interval_ms=10, lost_confirm_ms=0)) >= 1_000
