"""Pure decisions of the runtime: attempt numbers, retry or not, backoff, timeouts.

They take plain values and return plain values, so the rules users rely on ("a job runs at
most ``max_attempts`` times", "the n-th retry waits ``backoff * 2**(n-1)``") are tested
without Redis and read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BACKOFF_MS = 3_600_000
_MAX_EXPONENT = 40  # 2**40 ms is far past the cap; keeps the arithmetic small


def attempt_number(attempt_offset: int, runs: int) -> int:
    """The attempt a run is: runs before a manual retry (``attempt_offset``) plus this one's
    number among the runs since (jobdeck's own counter in the job's hash, which never
    expires while the job is unfinished)."""
    return max(attempt_offset, 0) + max(runs, 1)


def charged_attempt(attempt: int, handed_back: int) -> int:
    """The attempt as the budget counts it: runs handed back by a stopping worker are free."""
    return max(attempt - max(handed_back, 0), 1)


def backoff_ms(
    base_ms: int, attempt: int, cap_ms: int = MAX_BACKOFF_MS, jitter: float = 0.0, rand: float = 0.0
) -> int:
    """Delay before the attempt after ``attempt``: ``base * 2**(attempt-1)``, capped.

    ``jitter`` (0..1) takes up to that fraction off the delay, scaled by ``rand`` (0..1), so
    jobs that failed together do not all come back in the same millisecond.
    """
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    delay = min(max(base_ms, 0) * 2**exponent, cap_ms)
    jitter = min(max(jitter, 0.0), 1.0)
    return max(int(delay * (1.0 - jitter * min(max(rand, 0.0), 1.0))), 0)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after an attempt failed."""

    retry: bool
    delay_ms: int = 0
    reason: str = ""


def decide_retry(
    attempt: int,
    max_attempts: int,
    base_backoff_ms: int,
    *,
    permanent: bool = False,
    cap_ms: int = MAX_BACKOFF_MS,
    jitter: float = 0.0,
    rand: float = 0.0,
) -> RetryDecision:
    """Retry a failed attempt unless it was the last one or the error says retrying is futile."""
    if permanent:
        return RetryDecision(False, reason="error is not retryable")
    if attempt >= max(max_attempts, 1):
        return RetryDecision(False, reason=f"attempt {attempt} of {max_attempts} failed")
    delay = backoff_ms(base_backoff_ms, attempt, cap_ms, jitter, rand)
    return RetryDecision(True, delay, reason=f"attempt {attempt} of {max_attempts} failed")


def effective_timeout_s(requested: float | None, cap_s: float) -> float:
    """The job's own timeout, bounded by what this worker allows (and sane when missing)."""
    if requested is None or requested <= 0:
        return cap_s
    return min(float(requested), cap_s)
