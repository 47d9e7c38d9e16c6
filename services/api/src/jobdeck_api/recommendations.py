"""What to do about failures: rules over the analytics figures (pure, no I/O).

Each rule returns a ``Finding`` only together with the numbers that triggered it, so a
reader can judge it; the thresholds are the fields of ``Rules``.

- ``timeouts_near_limit``: most failures of a task are timeouts and its p95 duration is
  close to its timeout — raise the timeout or make the task faster;
- ``non_retryable_fingerprint``: failures with this fingerprint were retried and never
  succeeded — mark the error non-retryable and save the attempts (both retry rules look at
  the latest 500 failed attempts of a fingerprint in the window);
- ``transient_fingerprint``: retries of this fingerprint mostly succeed — the error is
  transient; keep (or add) attempts;
- ``failure_rate_jump``: a queue's failure rate jumped against the previous window of the
  same length;
- ``no_worker``: a queue has waiting jobs and no live worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_TYPES = frozenset({"JobTimeout", "TimeoutError", "CancelledError", "asyncio.TimeoutError"})


def is_timeout(error_type: str) -> bool:
    return error_type in TIMEOUT_TYPES or "timeout" in error_type.lower()


@dataclass(frozen=True, slots=True)
class Rules:
    min_failures: int = 5
    timeout_share: float = 0.5  # of a task's failures
    timeout_closeness: float = 0.8  # p95 duration / timeout
    min_retried: int = 5
    transient_recovery: float = 0.8
    jump_min_finished: int = 20
    jump_pp: float = 10.0
    jump_factor: float = 2.0


@dataclass(frozen=True, slots=True)
class TaskFailures:
    queue: str
    name: str
    failures: int
    timeouts: int
    p95_duration_ms: float | None
    timeout_ms: float | None
    timeout_source: str | None = None


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    fingerprint: str
    error_type: str
    pattern: str
    retried: int  # failed attempts followed by another attempt
    recovered: int  # of those, jobs that completed in the end


@dataclass(frozen=True, slots=True)
class QueueWindow:
    queue: str
    failed: int
    finished: int  # completed + failed
    previous_failed: int
    previous_finished: int


@dataclass(frozen=True, slots=True)
class QueueLive:
    queue: str
    waiting: int
    workers: int


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    message: str
    evidence: dict[str, Any]
    queue: str | None = None
    name: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Inputs:
    tasks: list[TaskFailures] = field(default_factory=list)
    retries: list[RetryOutcome] = field(default_factory=list)
    windows: list[QueueWindow] = field(default_factory=list)
    live: list[QueueLive] = field(default_factory=list)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def may_time_out(failures: int, timeouts: int, rules: Rules = Rules()) -> bool:
    """Whether a task's failure counts alone let ``timeouts_near_limit`` fire: only then are
    its p95 duration and its timeout worth reading."""
    return failures >= rules.min_failures and timeouts >= rules.timeout_share * failures


def timeouts_near_limit(tasks: Iterable[TaskFailures], rules: Rules) -> list[Finding]:
    found = []
    for t in tasks:
        if not may_time_out(t.failures, t.timeouts, rules):
            continue
        if t.timeout_ms is None or t.p95_duration_ms is None:
            continue
        share = t.timeouts / t.failures
        closeness = t.p95_duration_ms / t.timeout_ms if t.timeout_ms > 0 else 0.0
        if closeness < rules.timeout_closeness:
            continue
        found.append(
            Finding(
                "timeouts_near_limit",
                "warning",
                f"{t.timeouts} of {t.failures} failures of {t.name!r} on {t.queue!r} are "
                f"timeouts and its p95 duration ({t.p95_duration_ms:.0f} ms) is "
                f"{closeness:.0%} of its timeout ({t.timeout_ms:.0f} ms): raise the timeout "
                "or make the task faster",
                {
                    "failures": t.failures,
                    "timeouts": t.timeouts,
                    "timeoutShare": round(share, 4),
                    "p95DurationMs": t.p95_duration_ms,
                    "timeoutMs": t.timeout_ms,
                    "timeoutSource": t.timeout_source,
                    "p95OverTimeout": round(closeness, 4),
                },
                queue=t.queue,
                name=t.name,
            )
        )
    return found


def retry_findings(retries: Iterable[RetryOutcome], rules: Rules) -> list[Finding]:
    found = []
    for r in retries:
        if r.retried < rules.min_retried:
            continue
        recovery = r.recovered / r.retried
        evidence = {
            "retriedAttempts": r.retried,
            "recovered": r.recovered,
            "recoveryRate": round(recovery, 4),
            "errorType": r.error_type,
            "pattern": r.pattern,
        }
        if r.recovered == 0:
            found.append(
                Finding(
                    "non_retryable_fingerprint",
                    "warning",
                    f"{r.error_type}: {r.pattern!r} was retried {r.retried} times and never "
                    "succeeded: mark it non-retryable so jobs fail at once",
                    evidence,
                    fingerprint=r.fingerprint,
                )
            )
        elif recovery >= rules.transient_recovery:
            found.append(
                Finding(
                    "transient_fingerprint",
                    "info",
                    f"{r.error_type}: {r.pattern!r} is transient: {r.recovered} of {r.retried} "
                    "retried jobs completed in the end; keep the attempts",
                    evidence,
                    fingerprint=r.fingerprint,
                )
            )
    return found


def failure_rate_jumps(windows: Iterable[QueueWindow], rules: Rules) -> list[Finding]:
    found = []
    for w in windows:
        if w.finished < rules.jump_min_finished or w.previous_finished < rules.jump_min_finished:
            continue
        now, before = w.failed / w.finished, w.previous_failed / w.previous_finished
        jump_pp = 100 * (now - before)
        if jump_pp < rules.jump_pp or now < before * rules.jump_factor:
            continue
        found.append(
            Finding(
                "failure_rate_jump",
                "critical",
                f"failure rate of {w.queue!r} rose from {before:.1%} to {now:.1%} "
                f"(+{jump_pp:.1f} pp) against the previous window",
                {
                    "failed": w.failed,
                    "finished": w.finished,
                    "failureRate": _rate(w.failed, w.finished),
                    "previousFailed": w.previous_failed,
                    "previousFinished": w.previous_finished,
                    "previousFailureRate": _rate(w.previous_failed, w.previous_finished),
                    "jumpPp": round(jump_pp, 2),
                },
                queue=w.queue,
            )
        )
    return found


def idle_queues(live: Iterable[QueueLive]) -> list[Finding]:
    return [
        Finding(
            "no_worker",
            "critical",
            f"{q.waiting} jobs wait on {q.queue!r} and no live worker serves it: start one",
            {"waiting": q.waiting, "liveWorkers": q.workers},
            queue=q.queue,
        )
        for q in live
        if q.waiting > 0 and q.workers == 0
    ]


def recommend(inputs: Inputs, rules: Rules = Rules()) -> list[Finding]:
    """Every finding, most severe first."""
    found = [
        *idle_queues(inputs.live),
        *failure_rate_jumps(inputs.windows, rules),
        *timeouts_near_limit(inputs.tasks, rules),
        *retry_findings(inputs.retries, rules),
    ]
    order = {"critical": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order.get(f.severity, 3))
