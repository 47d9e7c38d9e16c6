"""Synthetic job histories as the workers would publish them: every outcome a job can have.

``history(...)`` returns a job's events in the order a worker emits them; the tests then
duplicate and shuffle them to play redelivery and reordering against the recorder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from jobdeck.events import Event, EventType

ERRORS = [
    ("JobTimeout", "job timed out after {n}s"),
    ("ConnectionError", "connection to 10.0.0.{n}:5432 refused"),
    ("KeyError", "'customer-{n}' not found"),
]
OUTCOMES = ("completed", "failed", "retried_ok", "retried_failed", "cancel_waiting", "cancel_run")


@dataclass
class Job:
    job_id: str
    queue: str
    name: str
    created: int


def _ev(job: Job, kind: EventType, attempt: int, ts: int, **fields: Any) -> Event:
    return Event(
        type=kind,
        queue=job.queue,
        job_id=job.job_id,
        attempt=attempt,
        name=job.name,
        ts=ts,
        fields=fields,
    )


def added(job: Job, attempt: int, ts: int, run_at: int | None = None) -> Event:
    return _ev(
        job,
        EventType.ADDED,
        attempt,
        ts,
        status="waiting",
        priority=0,
        max_attempts=3,
        data={"job": job.job_id},
        options={"backoff_ms": 100, "timeout_s": 30.0},
        run_at=run_at,
        by="test",
    )


def run(
    job: Job, attempt: int, start: int, duration: int, outcome: str, rng: random.Random
) -> list[Event]:
    """One attempt: started, then completed, failed, retrying or cancelled while running."""
    end = start + duration
    events = [
        _ev(job, EventType.STARTED, attempt, start, started_at=start, worker="w1", max_attempts=3)
    ]
    timing = {"started_at": start, "finished_at": end, "duration_ms": duration}
    if outcome == "completed":
        events.append(_ev(job, EventType.COMPLETED, attempt, end, result={"ok": 1}, **timing))
    elif outcome == "cancelled":
        events.append(_ev(job, EventType.CANCELLED, attempt, end, by="op", **timing))
    else:
        kind, message = rng.choice(ERRORS)
        error = {
            "error_type": kind,
            "error_message": message.format(n=rng.randint(1, 999)),
            "traceback": None,
        }
        if outcome == "retrying":
            events.append(
                _ev(job, EventType.RETRYING, attempt, end, retry_at=end + 100, **timing, **error)
            )
        else:
            events.append(_ev(job, EventType.FAILED, attempt, end, **timing, **error))
    return events


def history(job: Job, outcome: str, rng: random.Random) -> list[Event]:
    """All events of one job's life ending in ``outcome`` (one of ``OUTCOMES``)."""
    t = job.created
    events = [added(job, 1, t)]
    wait = rng.randint(0, 3_000)
    duration = int(rng.lognormvariate(6, 1.5)) + 1
    start = t + wait
    if outcome in ("completed", "failed"):
        events += run(job, 1, start, duration, outcome, rng)
    elif outcome in ("retried_ok", "retried_failed"):
        events += run(job, 1, start, duration, "retrying", rng)
        again = start + duration + 100 + rng.randint(0, 500)
        final = "completed" if outcome == "retried_ok" else "failed"
        events += run(job, 2, again, int(rng.lognormvariate(6, 1.5)) + 1, final, rng)
    elif outcome == "cancel_waiting":
        events.append(
            _ev(
                job,
                EventType.CANCELLED,
                1,
                t + wait,
                by="op",
                started_at=None,
                finished_at=t + wait,
            )
        )
    else:
        events += run(job, 1, start, duration, "cancelled", rng)
    return events


def manual_retry(job: Job, attempt: int, at: int, outcome: str, rng: random.Random) -> list[Event]:
    """An operator's retry of a failed job: ``added`` for the next attempt, then its run."""
    start = at + rng.randint(0, 2_000)
    return [
        added(job, attempt, at),
        *run(job, attempt, start, int(rng.lognormvariate(6, 1.5)) + 1, outcome, rng),
    ]


def shuffled_with_duplicates(events: list[Event], rng: random.Random) -> list[Event]:
    """Every event at least once, a third of them twice, in a random order."""
    out = events + rng.sample(events, len(events) // 3)
    rng.shuffle(out)
    return out
