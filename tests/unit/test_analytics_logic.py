"""Analytics decisions without I/O: windows, the trend method, recommendation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from jobdeck_api import recommendations as rec
from jobdeck_api.analytics_cache import cache_key
from jobdeck_api.analytics_range import MAX_BUCKETS, Interval, RangeError, resolve
from jobdeck_api.trend import Trend, TrendMethod, success_trend

NOW = datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC)


def test_default_window_is_the_last_day_in_whole_hours() -> None:
    w = resolve(None, None, None, NOW)
    assert w.interval is Interval.HOUR and w.level == "hour"
    assert (w.start, w.end) == (
        datetime(2024, 3, 9, 12, tzinfo=UTC),
        datetime(2024, 3, 10, 13, tzinfo=UTC),
    )
    assert (w.requested_start, w.requested_end) == (NOW - timedelta(hours=24), NOW)
    assert w.buckets == 25


def test_interval_defaults_follow_the_range_and_buckets_are_whole() -> None:
    assert resolve(NOW - timedelta(hours=6), NOW, None, NOW).interval is Interval.MIN15
    assert resolve(NOW - timedelta(days=7), NOW, None, NOW).interval is Interval.HOUR
    month = resolve(NOW - timedelta(days=30), NOW, None, NOW)
    assert month.interval is Interval.DAY and month.level == "day"
    q = resolve(NOW - timedelta(hours=1), NOW, Interval.MIN15, NOW)
    assert q.start == datetime(2024, 3, 10, 11, 30, tzinfo=UTC) and q.level == "minute"
    assert q.end == datetime(2024, 3, 10, 12, 45, tzinfo=UTC)
    assert q.previous().end == q.start and q.previous().buckets == q.buckets


def test_bad_windows_name_the_parameter() -> None:
    with pytest.raises(RangeError) as err:
        resolve(NOW, NOW - timedelta(hours=1), None, NOW)
    assert err.value.parameter == "endDate"
    with pytest.raises(RangeError) as err:
        resolve(NOW - timedelta(days=200), NOW, Interval.MIN15, NOW)
    assert err.value.parameter == "interval" and str(MAX_BUCKETS) in err.value.reason
    assert resolve(NOW - timedelta(days=100), NOW, Interval.MIN15, NOW).buckets <= MAX_BUCKETS


def test_a_start_alone_gives_a_day_from_it() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    w = resolve(start, None, None, NOW)
    assert w.requested_end == NOW and w.interval is Interval.DAY
    future = resolve(NOW + timedelta(days=1), None, None, NOW)
    assert future.requested_end - future.requested_start == timedelta(hours=24)


def series(rates: list[float], jobs: int = 100) -> tuple[list[int], list[int]]:
    completed = [round(r * jobs) for r in rates]
    return completed, [jobs - c for c in completed]


def test_trend_on_rising_flat_falling_and_thin_series() -> None:
    rising = success_trend(*series([0.70 + 0.02 * i for i in range(12)]))
    assert rising.trend is Trend.IMPROVING and rising.change_pp == pytest.approx(22, abs=0.5)
    flat = success_trend(*series([0.90, 0.91, 0.89, 0.90, 0.91, 0.90] * 2))
    assert flat.trend is Trend.STABLE
    falling = success_trend(*series([0.99 - 0.01 * i for i in range(12)]))
    assert falling.trend is Trend.DECLINING and falling.slope_pp_per_bucket == pytest.approx(-1)
    thin = success_trend(*series([0.2, 0.5, 0.9, 1.0] * 3, jobs=4))
    assert thin.trend is Trend.INSUFFICIENT_DATA and thin.buckets_used == 0
    assert success_trend([], []).trend is Trend.INSUFFICIENT_DATA


def test_trend_reads_only_the_last_window_of_buckets() -> None:
    old_crash = [0.1] * 20 + [0.95] * 12  # bad long ago, steady lately
    assert success_trend(*series(old_crash)).trend is Trend.STABLE
    short = success_trend(*series([0.5, 0.6, 0.7]), TrendMethod(window=12))
    assert short.trend is Trend.IMPROVING and short.change_pp == pytest.approx(20)
    assert "least-squares" in TrendMethod().describe()


RULES = rec.Rules()


def test_timeouts_near_limit_fires_only_with_its_numbers() -> None:
    hot = rec.TaskFailures("q", "resize", 10, 8, 28_500.0, 30_000.0, "options of job j1")
    (finding,) = rec.timeouts_near_limit([hot], RULES)
    assert finding.rule == "timeouts_near_limit" and finding.evidence["timeouts"] == 8
    assert finding.evidence["p95OverTimeout"] == 0.95
    fast = rec.TaskFailures("q", "resize", 10, 8, 3_000.0, 30_000.0)
    few_timeouts = rec.TaskFailures("q", "resize", 10, 2, 29_000.0, 30_000.0)
    unknown = rec.TaskFailures("q", "resize", 10, 8, 29_000.0, None)
    rare = rec.TaskFailures("q", "resize", 3, 3, 29_000.0, 30_000.0)
    assert rec.timeouts_near_limit([fast, few_timeouts, unknown, rare], RULES) == []
    # What the failures report checks before it reads p95 durations and timeouts.
    assert rec.may_time_out(10, 5, RULES) and rec.may_time_out(5, 5, RULES)
    assert not rec.may_time_out(10, 4, RULES) and not rec.may_time_out(4, 4, RULES)


def test_retry_rules_tell_permanent_from_transient_errors() -> None:
    never = rec.RetryOutcome("f1", "KeyError", "'<v>' missing", retried=12, recovered=0)
    mostly = rec.RetryOutcome("f2", "ConnectionError", "refused", retried=10, recovered=9)
    mixed = rec.RetryOutcome("f3", "ValueError", "bad", retried=10, recovered=5)
    few = rec.RetryOutcome("f4", "KeyError", "x", retried=2, recovered=0)
    found = {f.fingerprint: f for f in rec.retry_findings([never, mostly, mixed, few], RULES)}
    assert found["f1"].rule == "non_retryable_fingerprint"
    assert found["f1"].evidence["retriedAttempts"] == 12
    assert (
        found["f2"].rule == "transient_fingerprint" and found["f2"].evidence["recoveryRate"] == 0.9
    )
    assert set(found) == {"f1", "f2"}


def test_failure_rate_jump_against_the_previous_window() -> None:
    jumped = rec.QueueWindow("q", failed=30, finished=100, previous_failed=5, previous_finished=100)
    (finding,) = rec.failure_rate_jumps([jumped], RULES)
    assert finding.evidence["jumpPp"] == 25.0 and finding.severity == "critical"
    steady = rec.QueueWindow(
        "q", failed=30, finished=100, previous_failed=25, previous_finished=100
    )
    quiet_before = rec.QueueWindow(
        "q", failed=30, finished=100, previous_failed=0, previous_finished=3
    )
    assert rec.failure_rate_jumps([steady, quiet_before], RULES) == []


def test_no_worker_and_ordering() -> None:
    inputs = rec.Inputs(
        live=[rec.QueueLive("stuck", waiting=12, workers=0), rec.QueueLive("ok", 12, 2)],
        retries=[rec.RetryOutcome("f2", "E", "p", retried=10, recovered=10)],
    )
    found = rec.recommend(inputs)
    assert [f.rule for f in found] == ["no_worker", "transient_fingerprint"]
    assert found[0].evidence == {"waiting": 12, "liveWorkers": 0}
    assert rec.recommend(rec.Inputs(live=[rec.QueueLive("idle", 0, 0)])) == []


def test_cache_keys_differ_by_scope() -> None:
    params = {"start": NOW, "interval": "hour"}
    everyone = cache_key("performance", None, params)
    assert cache_key("performance", ["a"], params) != everyone
    assert cache_key("performance", ["b", "a"], params) == cache_key(
        "performance", ["a", "b"], params
    )
    assert cache_key("failures", None, params) != everyone


def test_a_window_is_tiled_by_the_coarsest_levels() -> None:
    w = resolve(
        datetime(2024, 3, 1, 22, 45, tzinfo=UTC),
        datetime(2024, 3, 4, 1, 30, tzinfo=UTC),
        Interval.MIN15,
        NOW,
    )
    t = [(level, a.isoformat()[5:16], b.isoformat()[5:16]) for level, a, b in w.tiles()]
    assert t == [
        ("minute", "03-01T22:45", "03-01T23:00"),
        ("hour", "03-01T23:00", "03-02T00:00"),
        ("day", "03-02T00:00", "03-04T00:00"),
        ("hour", "03-04T00:00", "03-04T01:00"),
        ("minute", "03-04T01:00", "03-04T01:30"),
    ]
    day = resolve(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC), None, NOW)
    assert [x[0] for x in day.tiles()] == ["day"]
