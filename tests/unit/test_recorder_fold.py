"""The recorder's fold: how events (duplicated, reordered, late) change a job's row."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jobdeck.events import Event, EventType, JobStatus
from jobdeck_recorder.fold import JobRow, fold, plan_batch

T0 = 1_700_000_000_000


def ev(etype: EventType, attempt: int = 1, job: str = "j1", ts: int = T0, **fields: Any) -> Event:
    return Event(
        type=etype, queue="q", job_id=job, attempt=attempt, name="task", ts=ts, fields=fields
    )


def added(attempt: int = 1, ts: int = T0, status: str = "waiting", **extra: Any) -> Event:
    fields = {
        "status": status,
        "priority": 5,
        "max_attempts": 3,
        "data": {"x": 1},
        "options": {"backoff_ms": 10, "timeout_s": 5, "template_id": "t1", "schedule_id": None},
        "run_at": None,
        "by": "alice",
    }
    fields.update(extra)
    return ev(EventType.ADDED, attempt, ts=ts, **fields)


def started(attempt: int = 1, at: int = T0 + 100, worker: str = "w1") -> Event:
    return ev(EventType.STARTED, attempt, ts=at, started_at=at, worker=worker, max_attempts=3)


def progress(value: float, attempt: int = 1, message: str | None = None) -> Event:
    return ev(EventType.PROGRESS, attempt, ts=T0 + 150, progress=value, message=message)


def completed(attempt: int = 1, start: int = T0 + 100, end: int = T0 + 300) -> Event:
    return ev(
        EventType.COMPLETED,
        attempt,
        ts=end,
        started_at=start,
        finished_at=end,
        duration_ms=end - start,
        result={"ok": True},
    )


def failed(attempt: int = 1, start: int = T0 + 100, end: int = T0 + 300) -> Event:
    return ev(
        EventType.FAILED,
        attempt,
        ts=end,
        started_at=start,
        finished_at=end,
        duration_ms=end - start,
        error_type="ValueError",
        error_message="bad row",
        traceback="Traceback...",
    )


def retrying(attempt: int = 1, retry_at: int = T0 + 5_000) -> Event:
    return ev(
        EventType.RETRYING,
        attempt,
        ts=T0 + 300,
        started_at=T0 + 100,
        finished_at=T0 + 300,
        duration_ms=200,
        error_type="IOError",
        error_message="flaky",
        traceback=None,
        retry_at=retry_at,
    )


def cancelled(attempt: int = 1, ran: bool = False, by: str = "bob") -> Event:
    return ev(
        EventType.CANCELLED,
        attempt,
        ts=T0 + 400,
        started_at=T0 + 100 if ran else None,
        finished_at=T0 + 400,
        by=by,
    )


def run(*events: Event, row: JobRow | None = None) -> JobRow:
    result = fold(row, events)
    assert result is not None
    return result


def test_full_lifecycle_in_order() -> None:
    row = run(added(), started(), progress(40, message="half"), completed())
    assert row.status is JobStatus.COMPLETED
    assert (row.attempts, row.worker, row.progress) == (1, "w1", 100.0)
    assert (row.started_at, row.finished_at, row.duration_ms) == (T0 + 100, T0 + 300, 200)
    assert row.result == {"ok": True}
    assert (row.priority, row.max_attempts, row.data, row.template_id) == (5, 3, {"x": 1}, "t1")
    assert row.created_at == T0
    assert row.version == 1 * 16 + 3


def test_progress_only_while_active_in_that_attempt_and_never_down() -> None:
    row = run(added(), started(), progress(30, message="a"), progress(60, message="b"))
    assert (row.status, row.progress, row.progress_message) == (JobStatus.ACTIVE, 60.0, "b")
    assert run(progress(20), row=row).progress == 60.0  # redelivered older progress
    assert run(added(), progress(50)).progress == 0.0  # not started yet
    assert run(added(), started(), progress(50, attempt=2)).progress == 0.0  # other attempt
    assert run(added(), started(), completed(), progress(50)).progress == 100.0


def test_duplicates_change_nothing() -> None:
    events = [added(), started(), progress(50), completed()]
    once = run(*events)
    assert run(*events, *events) == once
    assert run(*[e for e in events for _ in range(3)]) == once


def test_late_events_never_move_a_job_backwards() -> None:
    row = run(completed(), started(), progress(10), added())
    assert row.status is JobStatus.COMPLETED
    assert row.progress == 100.0
    assert row.worker == "w1"  # the late start still says who ran it
    assert row.version == 19


def test_late_added_fills_identity_columns() -> None:
    row = run(started(at=T0 + 100), failed())
    assert (row.status, row.added_attempt, row.data, row.priority) == (JobStatus.FAILED, 0, None, 0)
    assert row.created_at == T0 + 100  # placeholder until added says otherwise
    row = run(added(ts=T0), row=row)
    assert row.status is JobStatus.FAILED
    assert (row.data, row.priority, row.max_attempts, row.created_at) == ({"x": 1}, 5, 3, T0)
    assert row.options["backoff_ms"] == 10
    assert row.error_message == "bad row"


def test_retries_move_forward_and_keep_the_last_error() -> None:
    row = run(added(), started(1), retrying(1, retry_at=T0 + 5_000))
    assert (row.status, row.attempts, row.run_at) == (JobStatus.DELAYED, 1, T0 + 5_000)
    assert (row.error_type, row.error_message) == ("IOError", "flaky")
    assert row.finished_at is None
    row = run(started(2, at=T0 + 6_000, worker="w2"), row=row)
    assert (row.status, row.attempts, row.worker, row.error_type) == (
        JobStatus.ACTIVE,
        2,
        "w2",
        None,
    )
    row = run(failed(2, start=T0 + 6_000, end=T0 + 6_500), row=row)
    assert (row.status, row.attempts, row.duration_ms) == (JobStatus.FAILED, 2, 500)
    # the first attempt's events arriving again change nothing
    assert run(started(1), retrying(1), progress(5, attempt=1), row=row) == row


def test_manual_retry_after_failure_goes_back_to_waiting_then_runs() -> None:
    row = run(added(), started(), failed())
    row = run(added(attempt=2, ts=T0 + 10_000, priority=9), row=row)
    assert (row.status, row.attempts, row.finished_at, row.result) == (
        JobStatus.WAITING,
        1,
        None,
        None,
    )
    assert row.created_at == T0  # created when first added, not when retried
    assert row.priority == 9 and row.added_attempt == 2
    assert row.error_type == "ValueError"  # why it was retried stays visible
    row = run(added(), row=row)  # the first added, redelivered: identity stays attempt 2's
    assert row.priority == 9 and row.status is JobStatus.WAITING
    row = run(started(2), completed(2), row=row)
    assert (row.status, row.attempts) == (JobStatus.COMPLETED, 2)


def test_cancel_of_waiting_job_wins_over_a_late_start() -> None:
    row = run(added(), cancelled(ran=False), started(), completed())
    assert row.status is JobStatus.CANCELLED
    assert (row.cancelled_by, row.finished_at, row.duration_ms) == ("bob", T0 + 400, None)
    assert (row.attempts, row.version) == (0, 19)  # never ran; a retry numbers after 19 // 16


def test_cancel_while_running_vs_completion_first_final_event_wins() -> None:
    row = run(added(), started(), cancelled(ran=True), completed())
    assert row.status is JobStatus.CANCELLED and row.duration_ms == 300
    row = run(added(), started(), completed(), cancelled(ran=True))
    assert row.status is JobStatus.COMPLETED and row.cancelled_by is None


def test_cancel_during_backoff_after_retrying() -> None:
    row = run(added(), started(1), retrying(1), cancelled(attempt=2))
    assert (row.status, row.attempts, row.error_type) == (JobStatus.CANCELLED, 1, "IOError")


def test_cancel_during_backoff_numbered_with_the_failed_attempt() -> None:
    row = run(added(), started(1), retrying(1), cancelled(attempt=1))
    assert (row.status, row.attempts, row.cancelled_by) == (JobStatus.CANCELLED, 1, "bob")
    assert run(cancelled(attempt=1, by="eve"), retrying(1), row=row) == row


def test_delayed_added_sets_run_at() -> None:
    row = run(added(status="delayed", run_at=T0 + 60_000))
    assert (row.status, row.run_at, row.attempts) == (JobStatus.DELAYED, T0 + 60_000, 0)


def test_progress_before_any_row_is_dropped() -> None:
    assert fold(None, [progress(10)]) is None


def test_plan_batch_splits_updates_inserts_and_dedupes_logs() -> None:
    existing = {"j1": run(added())}
    log1 = ev(EventType.LOG, seq=1, level="info", message="hello")
    events = [
        started(),
        log1,
        log1,
        ev(EventType.LOG, seq=2, level="error", message="oops"),
        _job("j2"),
        ev(EventType.PROGRESS, job="j3", progress=5),
    ]
    plan = plan_batch(events, existing)
    assert [r.id for r in plan.updates] == ["j1"]
    assert [r.id for r in plan.inserts] == ["j2"]
    assert [(x.job_id, x.seq) for x in plan.logs] == [("j1", 1), ("j1", 2)]
    assert existing["j1"].status is JobStatus.WAITING  # the caller's rows are not modified


def test_plan_batch_skips_rows_that_do_not_change() -> None:
    existing = {"j1": run(added(), started(), completed())}
    plan = plan_batch([started(), progress(50), completed()], existing)
    assert plan.updates == [] and plan.inserts == []


def _job(job_id: str) -> Event:
    base = added()
    return Event(
        type=base.type,
        queue=base.queue,
        job_id=job_id,
        attempt=1,
        name=base.name,
        ts=base.ts,
        fields=base.fields,
    )


LIFECYCLES = [
    [added(), started(), progress(10), progress(70), completed()],
    [added(), started(1), retrying(1), started(2, at=T0 + 6_000), failed(2)],
    [added(), cancelled()],
    [added(), started(), cancelled(ran=True)],
    [added(), started(), failed(), added(attempt=2, ts=T0 + 9_000), started(2), completed(2)],
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LIFECYCLES), st.data())
def test_redelivery_after_the_fact_never_changes_the_result(
    lifecycle: list[Event], data: st.DataObject
) -> None:
    """Any event of a job's history redelivered later (any number, any order) is a no-op."""
    final = run(*lifecycle)
    replays = data.draw(st.lists(st.sampled_from(lifecycle), max_size=12))
    assert run(*replays, row=final) == final


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LIFECYCLES), st.data())
def test_duplicates_in_between_keep_the_outcome(
    lifecycle: list[Event], data: st.DataObject
) -> None:
    """Each event delivered once or more, duplicates possibly late: same final status."""
    final = run(*lifecycle)
    stream: list[Event] = []
    for event in lifecycle:
        stream.append(event)
        stream.extend(data.draw(st.lists(st.sampled_from(stream), max_size=2)))
    row = run(*stream)
    assert (row.status, row.attempts, row.version, row.result) == (
        final.status,
        final.attempts,
        final.version,
        final.result,
    )
    assert (row.created_at, row.priority, row.data) == (
        final.created_at,
        final.priority,
        final.data,
    )


def added_on(queue: str, attempt: int = 1, **extra: Any) -> Event:
    e = added(attempt, **extra)
    return Event(
        type=e.type, queue=queue, job_id=e.job_id, attempt=e.attempt, name=e.name, ts=e.ts,
        fields=e.fields,
    )  # fmt: skip


def test_added_from_another_queue_does_not_take_over_an_established_row() -> None:
    # Job "j1" ran on queue "q" and was cancelled; a new job reuses the id on queue "other".
    cancel = ev(EventType.CANCELLED, ts=T0 + 50, started_at=None, finished_at=T0 + 50, by="admin")
    established = fold(None, [added(), cancel])
    assert established is not None and established.added_attempt == 1
    intruder = added_on("other", attempt=1, data={"stolen": True}, by="eve")
    later = added_on("other", attempt=5, data={"stolen": True}, by="eve")
    plan = plan_batch([intruder, later], {"j1": established})
    assert plan.conflicts == [intruder, later]
    assert plan.updates == [] and plan.inserts == []
    # fold() agrees: the row keeps its queue, data, status and who cancelled it.
    row = fold(established, [intruder, later])
    assert row == established
    assert row.queue == "q" and row.data == {"x": 1} and row.cancelled_by == "admin"


def test_added_fills_a_placeholder_from_any_queue_and_same_queue_retries_apply() -> None:
    # A placeholder (added not yet seen) has no established identity: its added applies.
    plan = plan_batch([started(), added_on("q", attempt=1)], {})
    assert plan.conflicts == [] and plan.inserts[0].added_attempt == 1
    # A retry (same queue, next attempt) still updates the row.
    done = fold(None, [added(), started(), failed()])
    assert done is not None
    retried = plan_batch([added(2)], {"j1": done})
    assert retried.conflicts == [] and retried.updates[0].status is JobStatus.WAITING
