"""Rollup deltas, the log-scale histogram and error fingerprints: pure, without I/O."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from jobdeck.events import JobStatus
from jobdeck.histogram import (
    RELATIVE_ERROR,
    bucket_of,
    merge,
    percentile,
    representative,
)
from jobdeck_recorder.fingerprint import fingerprint, normalise
from jobdeck_recorder.fold import JobRow
from jobdeck_recorder.rollup import NEVER, plan_rollups, wait_ms

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def row(status: JobStatus = JobStatus.COMPLETED, **over: object) -> JobRow:
    base = JobRow(
        id="j1",
        queue="q",
        name="task",
        status=status,
        created_at=T0,
        attempts=1,
        started_at=T0 + 500,
        finished_at=T0 + 2_500,
        duration_ms=2_000,
        version=19,
    )
    return replace(base, **over)  # type: ignore[arg-type]


def test_a_final_row_counts_once_at_each_level() -> None:
    plan = plan_rollups([(None, row())])
    assert [
        (d.level, d.jobs, d.timed, d.duration_sum, d.waited, d.wait_sum) for d in plan.rows
    ] == [
        ("day", 1, 1, 2_000, 1, 500),
        ("hour", 1, 1, 2_000, 1, 500),
        ("minute", 1, 1, 2_000, 1, 500),
    ]
    minute = plan.rows[2]
    assert minute.bucket == T0 - T0 % 60_000
    assert (minute.duration_min, minute.duration_max) == (2_000, 2_000)
    assert minute.duration_hist == {bucket_of(2_000): 1}
    assert plan.failures == [] and plan.attempt_failures == []


def test_unchanged_or_unfinished_rows_change_nothing() -> None:
    done = row()
    assert plan_rollups([(done, replace(done, worker="w1"))]).empty  # a late start filled in
    active = row(JobStatus.ACTIVE, finished_at=None, duration_ms=None)
    assert plan_rollups([(None, active)]).empty


def test_a_retried_job_moves_from_failed_to_its_new_outcome() -> None:
    failed = row(JobStatus.FAILED, error_type="ValueError", error_message="bad row 7")
    waiting = replace(failed, status=JobStatus.WAITING, version=2 * 16)
    plan = plan_rollups([(failed, waiting)])
    minute = [d for d in plan.rows if d.level == "minute"]
    assert [(d.status, d.jobs, d.timed, d.duration_sum) for d in minute] == [
        ("failed", -1, -1, -2_000)
    ]
    assert (minute[0].removed_min, minute[0].removed_max) == (2_000, 2_000)
    assert minute[0].duration_hist == {bucket_of(2_000): -1}
    failures = [f for f in plan.failures if f.level == "minute"]
    assert [(f.failures, f.first_seen, f.last_seen) for f in failures] == [(-1, NEVER, 0)]
    done = row(attempts=2, finished_at=T0 + 90_000, version=2 * 16 + 3)
    plan = plan_rollups([(waiting, done)])
    minute = [d for d in plan.rows if d.level == "minute"]
    assert [(d.status, d.jobs, d.retried) for d in minute] == [("completed", 1, 1)]


def test_a_failure_has_a_fingerprint_and_an_attempt_row() -> None:
    failed = row(JobStatus.FAILED, error_type="KeyError", error_message="'user-991' missing")
    plan = plan_rollups([(None, failed)])
    f = plan.failures[0]
    assert (f.failures, f.error_type, f.pattern, f.sample_job_id) == (
        1,
        "KeyError",
        "'<v>' missing",
        "j1",
    )
    assert f.first_seen == f.last_seen == T0 + 2_500
    assert [(a.job_id, a.attempt, a.failed_at) for a in plan.attempt_failures] == [
        ("j1", 1, T0 + 2_500)
    ]
    retrying = row(JobStatus.DELAYED, error_type="IOError", error_message="flaky", finished_at=None)
    assert [
        (a.attempt, a.error_type) for a in plan_rollups([(None, retrying)]).attempt_failures
    ] == [(1, "IOError")]


def test_wait_counts_from_when_the_job_was_due() -> None:
    assert wait_ms(row()) == 500
    assert wait_ms(row(run_at=T0 + 400)) == 100  # delayed or backing off until T0 + 400
    assert wait_ms(row(run_at=T0 + 900)) == 0  # never negative
    assert wait_ms(row(started_at=None)) is None


def test_histogram_buckets_are_log_scale_and_percentiles_within_the_stated_error() -> None:
    assert bucket_of(0) == 0 and bucket_of(0.5) == 0 and bucket_of(1) == 1
    assert bucket_of(2) == 5 and bucket_of(1024) == 41
    rng = random.Random(7)
    values = sorted(int(rng.lognormvariate(6, 2)) + 1 for _ in range(5_000))
    hist = merge([{bucket_of(v): 1} for v in values])
    for p in (0.5, 0.95, 0.99):
        exact = values[math.ceil(p * len(values)) - 1]  # nearest rank (percentile_disc)
        estimate = percentile(hist, p, values[0], values[-1])
        assert estimate is not None
        assert abs(estimate - exact) <= exact * RELATIVE_ERROR + 0.1
    assert percentile({}, 0.5) is None
    assert percentile({3: 1}, 0.5, lo=2, hi=2) == 2.0  # clamped to the exact extremes
    assert representative(0) == 0.0


def test_fingerprints_of_real_error_messages() -> None:
    cases = [
        (
            'connection to server at "10.0.3.7", port 5432 failed: Connection refused',
            'connection to server at "<v>", port <n> failed: Connection refused',
        ),
        (
            "HTTPSConnectionPool(host='api.stripe.com', port=443): Max retries exceeded with url: "
            "/v1/charges/ch_3N5abcDEF123ghi (Caused by ReadTimeoutError)",
            "HTTPSConnectionPool(host='<v>', port=<n>): Max retries exceeded with url: "
            "<path> (Caused by ReadTimeoutError)",
        ),
        (
            "[Errno 2] No such file or directory: '/srv/data/prices-2024-03-01.csv'",
            "[Errno <n>] No such file or directory: '<v>'",
        ),
        (
            "job timed out after 30s",
            "job timed out after <n>s",
        ),
        (
            "Order 5f3c9a2e-1b7d-4c1e-9f0a-2b6d8e4c7a10 not found (ref 0x7f3a9c, sha deadbeef42)",
            "Order <uuid> not found (ref <hex>, sha <hex>)",
        ),
        (
            "could not fetch https://cdn.example.com/img/991.png for user ab12cd34ef56gh78",
            "could not fetch <url> for user <id>",
        ),
        ("deadlock detected\nDETAIL: Process 4411 waits for ShareLock", "deadlock detected"),
    ]
    for message, pattern in cases:
        assert normalise(message) == pattern, message
    a = fingerprint("ConnectionError", "refused by 10.0.0.7:5432 after 3 attempts")
    b = fingerprint("ConnectionError", "refused by 10.0.0.9:5432 after 5 attempts")
    c = fingerprint("TimeoutError", "refused by 10.0.0.9:5432 after 5 attempts")
    assert a.value == b.value != c.value and len(a.value) == 16
    assert fingerprint(None, None).error_type == "Error"


def test_histograms_are_summed_over_status_per_level() -> None:
    done = row()
    failed = row(JobStatus.FAILED, id="j2", duration_ms=100, error_type="E", error_message="m")
    plan = plan_rollups([(None, done), (None, failed)])
    assert len(plan.rows) == 6  # completed and failed, at three levels
    assert [(h.level, h.duration_hist) for h in plan.histograms] == [
        ("day", {bucket_of(2_000): 1, bucket_of(100): 1}),
        ("hour", {bucket_of(2_000): 1, bucket_of(100): 1}),
        ("minute", {bucket_of(2_000): 1, bucket_of(100): 1}),
    ]
    # A retried job that stays in the same bucket with the same duration changes nothing.
    again = replace(failed, status=JobStatus.FAILED, attempts=2, version=2 * 16 + 3)
    moved = plan_rollups([(failed, again)])
    assert moved.histograms == []
    assert {(d.level, d.jobs, d.retried) for d in moved.rows} == {
        ("minute", 0, 1),
        ("hour", 0, 1),
        ("day", 0, 1),
    }


def test_only_the_levels_asked_for_are_planned() -> None:
    plan = plan_rollups([(None, row())], levels=(("hour", 3_600_000), ("day", 86_400_000)))
    assert sorted({d.level for d in plan.rows}) == ["day", "hour"]
    assert sorted(h.level for h in plan.histograms) == ["day", "hour"]
    hour = next(d for d in plan.rows if d.level == "hour")
    assert hour.bucket == T0 - T0 % 3_600_000
