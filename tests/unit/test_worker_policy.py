"""The runtime's pure decisions: attempts, retries, backoff, timeouts."""

from __future__ import annotations

import pytest
from jobdeck_worker.policy import (
    MAX_BACKOFF_MS,
    attempt_number,
    backoff_ms,
    charged_attempt,
    decide_retry,
    effective_timeout_s,
)


def test_attempt_counts_earlier_runs_before_a_manual_retry() -> None:
    assert attempt_number(0, 1) == 1
    assert attempt_number(0, 3) == 3
    assert attempt_number(2, 1) == 3  # failed twice, retried by hand: third attempt
    assert attempt_number(-5, 0) == 1  # nonsense input still gives a valid attempt


@pytest.mark.parametrize(
    ("attempt", "handed_back", "charged"), [(1, 0, 1), (2, 1, 1), (5, 2, 3), (1, 3, 1)]
)
def test_hand_backs_are_not_charged_to_the_budget(
    attempt: int, handed_back: int, charged: int
) -> None:
    assert charged_attempt(attempt, handed_back) == charged


def test_backoff_doubles_per_attempt() -> None:
    assert [backoff_ms(1000, n) for n in (1, 2, 3, 4)] == [1000, 2000, 4000, 8000]


def test_backoff_is_capped_even_for_absurd_attempts() -> None:
    assert backoff_ms(1000, 30, cap_ms=60_000) == 60_000
    assert backoff_ms(1000, 10**9) == MAX_BACKOFF_MS
    assert backoff_ms(0, 5) == 0
    assert backoff_ms(-10, 2) == 0


def test_jitter_only_shortens_the_delay_within_its_fraction() -> None:
    assert backoff_ms(1000, 1, jitter=0.2, rand=0.0) == 1000
    assert backoff_ms(1000, 1, jitter=0.2, rand=1.0) == 800
    assert backoff_ms(1000, 1, jitter=0.2, rand=0.5) == 900
    assert backoff_ms(1000, 1, jitter=5.0, rand=1.0) == 0  # clamped to 100 %


def test_a_failed_attempt_is_retried_with_backoff_until_the_last() -> None:
    first = decide_retry(1, 3, 500)
    assert first.retry and first.delay_ms == 500
    second = decide_retry(2, 3, 500)
    assert second.retry and second.delay_ms == 1000
    last = decide_retry(3, 3, 500)
    assert not last.retry
    assert "attempt 3 of 3" in last.reason


def test_a_permanent_error_is_never_retried() -> None:
    decision = decide_retry(1, 5, 500, permanent=True)
    assert not decision.retry
    assert "not retryable" in decision.reason


def test_single_attempt_jobs_are_not_retried() -> None:
    assert not decide_retry(1, 1, 500).retry
    assert not decide_retry(1, 0, 500).retry


def test_effective_timeout_is_bounded_by_the_worker() -> None:
    assert effective_timeout_s(10, 3600) == 10
    assert effective_timeout_s(7200, 3600) == 3600
    assert effective_timeout_s(None, 300) == 300
    assert effective_timeout_s(0, 300) == 300
