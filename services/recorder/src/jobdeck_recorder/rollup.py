"""What a batch changes in the analytics rollups: pure decisions, no I/O.

The store hands over each changed job row with the row as it was before the batch (both
read under the batch's row locks). A row in a final state (completed, failed, cancelled)
contributes one job to the rollup row of (level, bucket of its ``finished_at``, queue,
name, status) at each level; the batch's delta is the new contribution minus the old.
So a job is counted once in its final state whatever the delivery: a duplicated or late
event leaves the row, hence its contribution, unchanged; a retried job's old outcome is
subtracted when it leaves it, and its new one added when it reaches it.

Durations and waits go into ``jobdeck.histogram`` buckets, stored pre-merged over the
final statuses (``HistogramDelta``: one row per level, bucket, queue and name — no report
reads a histogram per status, and a range then merges a third of the rows). Min and max cannot be
subtracted: a delta that removes a value says so (``removed_min``/``removed_max``) and the
writer recomputes the extremes of those rollup rows from ``jobs``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from jobdeck.events import JobStatus
from jobdeck.histogram import Histogram, bucket_of

from jobdeck_recorder.fingerprint import Fingerprint, fingerprint
from jobdeck_recorder.fold import JobRow

LEVELS: tuple[tuple[str, int], ...] = (
    ("minute", 60_000),
    ("hour", 3_600_000),
    ("day", 86_400_000),
)
FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
MAX_SAMPLE_MESSAGE = 1_000
NEVER = 253_370_764_800_000  # 9999-01-01 in epoch ms: later than any first_seen


def wait_ms(row: JobRow) -> int | None:
    """Enqueue to start of the last attempt: from when the job was due (its enqueue, or the
    end of its delay or retry backoff) to when that attempt started."""
    if row.started_at is None:
        return None
    due = max(row.created_at, row.run_at if row.run_at is not None else row.created_at)
    return max(row.started_at - due, 0)


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one job in a final state adds to the rollups."""

    job_id: str
    queue: str
    name: str
    status: JobStatus
    finished_at: int
    retried: bool
    duration_ms: int | None
    wait_ms: int | None
    failure: Fingerprint | None
    message: str
    duration_bucket: int = 0  # histogram buckets, worked out once for all three levels
    wait_bucket: int = 0


def contribution(row: JobRow | None) -> Contribution | None:
    """The job's contribution, or None when it is not (or no longer) in a final state."""
    if row is None or row.status not in FINAL:
        return None
    finished = row.finished_at if row.finished_at is not None else row.created_at
    failure = None
    if row.status is JobStatus.FAILED:
        failure = fingerprint(row.error_type, row.error_message)
    duration = None if row.duration_ms is None else max(row.duration_ms, 0)
    wait = wait_ms(row)
    return Contribution(
        job_id=row.id,
        queue=row.queue,
        name=row.name,
        status=row.status,
        finished_at=finished,
        retried=row.attempts > 1,
        duration_ms=duration,
        wait_ms=wait,
        failure=failure,
        message=(row.error_message or "")[:MAX_SAMPLE_MESSAGE],
        duration_bucket=0 if duration is None else bucket_of(duration),
        wait_bucket=0 if wait is None else bucket_of(wait),
    )


@dataclass(slots=True)
class RollupDelta:
    """The change to one ``job_rollups`` row."""

    level: str
    bucket: int  # epoch ms, start of the bucket
    queue: str
    name: str
    status: str
    jobs: int = 0
    retried: int = 0
    timed: int = 0
    duration_sum: int = 0
    duration_min: int | None = None  # of the added durations
    duration_max: int | None = None
    duration_hist: Histogram = field(default_factory=dict)
    waited: int = 0
    wait_sum: int = 0
    wait_hist: Histogram = field(default_factory=dict)
    removed_min: int | None = None  # of the removed durations: the extremes may need redoing
    removed_max: int | None = None

    @property
    def empty(self) -> bool:
        return (
            not (self.jobs or self.retried or self.timed or self.waited)
            and self.removed_min is None
            and not any(self.duration_hist.values())
            and not any(self.wait_hist.values())
        )


@dataclass(slots=True)
class HistogramDelta:
    """The change to one ``job_histograms`` row: durations and waits of every final status."""

    level: str
    bucket: int
    queue: str
    name: str
    duration_hist: Histogram = field(default_factory=dict)
    wait_hist: Histogram = field(default_factory=dict)


@dataclass(slots=True)
class FailureDelta:
    """The change to one ``job_failure_rollups`` row (one fingerprint in one bucket)."""

    level: str
    bucket: int
    queue: str
    name: str
    fingerprint: str
    error_type: str
    pattern: str
    failures: int = 0
    # Of the added failures only; the neutral values leave the stored ones as they are.
    first_seen: int = NEVER
    last_seen: int = 0
    sample_job_id: str = ""
    sample_message: str = ""


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """One failed attempt (a ``job_attempt_failures`` row)."""

    job_id: str
    attempt: int
    queue: str
    name: str
    fingerprint: str
    error_type: str
    failed_at: int


@dataclass(slots=True)
class RollupPlan:
    rows: list[RollupDelta] = field(default_factory=list)
    histograms: list[HistogramDelta] = field(default_factory=list)
    failures: list[FailureDelta] = field(default_factory=list)
    attempt_failures: list[AttemptFailure] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.rows or self.failures or self.attempt_failures)


def _apply(delta: RollupDelta, c: Contribution, sign: int) -> None:
    delta.jobs += sign
    delta.retried += sign * c.retried
    if c.duration_ms is not None:
        d = c.duration_ms
        delta.timed += sign
        delta.duration_sum += sign * d
        hist = delta.duration_hist
        hist[c.duration_bucket] = hist.get(c.duration_bucket, 0) + sign
        if sign > 0:
            delta.duration_min = d if delta.duration_min is None else min(delta.duration_min, d)
            delta.duration_max = d if delta.duration_max is None else max(delta.duration_max, d)
        else:
            delta.removed_min = d if delta.removed_min is None else min(delta.removed_min, d)
            delta.removed_max = d if delta.removed_max is None else max(delta.removed_max, d)
    if c.wait_ms is not None:
        delta.waited += sign
        delta.wait_sum += sign * c.wait_ms
        hist = delta.wait_hist
        hist[c.wait_bucket] = hist.get(c.wait_bucket, 0) + sign


def _apply_failure(delta: FailureDelta, c: Contribution, sign: int) -> None:
    """Counts add up; first/last seen and the sample only ever move to an added failure."""
    delta.failures += sign
    if sign > 0:
        delta.first_seen = min(delta.first_seen, c.finished_at)
        if c.finished_at >= delta.last_seen:
            delta.last_seen = c.finished_at
            delta.sample_job_id, delta.sample_message = c.job_id, c.message


def attempt_failure(row: JobRow) -> AttemptFailure | None:
    """The failed attempt a row shows: failed for good, or waiting to retry after a failure."""
    if row.error_type is None or row.attempts < 1:
        return None
    if row.status is JobStatus.FAILED:
        at = row.finished_at
    elif row.status is JobStatus.DELAYED and row.started_at is not None:
        at = row.started_at
    else:
        return None
    fp = fingerprint(row.error_type, row.error_message)
    return AttemptFailure(
        job_id=row.id,
        attempt=row.attempts,
        queue=row.queue,
        name=row.name,
        fingerprint=fp.value,
        error_type=fp.error_type,
        failed_at=at if at is not None else row.created_at,
    )


def _add_hist(target: Histogram, source: Histogram) -> None:
    for index, n in source.items():
        target[index] = target.get(index, 0) + n


def _merge(into: RollupDelta, d: RollupDelta) -> None:
    into.jobs += d.jobs
    into.retried += d.retried
    into.timed += d.timed
    into.duration_sum += d.duration_sum
    into.waited += d.waited
    into.wait_sum += d.wait_sum
    if d.duration_min is not None:
        into.duration_min = _lower(into.duration_min, d.duration_min)
        into.duration_max = _upper(into.duration_max, d.duration_max)
    if d.removed_min is not None:
        into.removed_min = _lower(into.removed_min, d.removed_min)
        into.removed_max = _upper(into.removed_max, d.removed_max)
    _add_hist(into.duration_hist, d.duration_hist)
    _add_hist(into.wait_hist, d.wait_hist)


def _lower(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _upper(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _histograms(rows: Iterable[RollupDelta]) -> list[HistogramDelta]:
    """The rows' histograms summed over status; rows whose histograms cancel out dropped."""
    merged: dict[tuple[str, int, str, str], HistogramDelta] = {}
    for d in rows:
        key = (d.level, d.bucket, d.queue, d.name)
        h = merged.get(key)
        if h is None:
            h = merged[key] = HistogramDelta(*key)
        _add_hist(h.duration_hist, d.duration_hist)
        _add_hist(h.wait_hist, d.wait_hist)
    found = []
    for h in merged.values():
        h.duration_hist = {i: n for i, n in h.duration_hist.items() if n}
        h.wait_hist = {i: n for i, n in h.wait_hist.items() if n}
        if h.duration_hist or h.wait_hist:
            found.append(h)
    return found


def _merge_failure(into: FailureDelta, d: FailureDelta) -> None:
    into.failures += d.failures
    into.first_seen = min(into.first_seen, d.first_seen)
    if d.last_seen >= into.last_seen:
        into.last_seen = d.last_seen
        into.sample_job_id, into.sample_message = d.sample_job_id, d.sample_message


def plan_rollups(
    changes: Iterable[tuple[JobRow | None, JobRow]],
    levels: tuple[tuple[str, int], ...] = LEVELS,
) -> RollupPlan:
    """The rollup deltas of a batch, from (row before, row after) of each changed job.

    Jobs are summed into deltas of the finest of ``levels`` (finest first; the recorder
    writes all of ``LEVELS``, a rebuild of old days only the levels still kept), and the
    coarser deltas from those (a batch holds far fewer minutes than jobs).
    """
    rows: dict[tuple[int, str, str, str], RollupDelta] = {}
    failures: dict[tuple[int, str, str, str], FailureDelta] = {}
    attempts: dict[tuple[str, int], AttemptFailure] = {}
    finest_level, finest = levels[0]
    for before, after in changes:
        old = contribution(before) if before is not None and before.status in FINAL else None
        new = contribution(after) if after.status in FINAL else None
        if old != new:
            for c, sign in ((old, -1), (new, 1)):
                if c is None:
                    continue
                bucket = c.finished_at - c.finished_at % finest
                key = (bucket, c.queue, c.name, c.status.value)
                delta = rows.get(key)
                if delta is None:
                    delta = rows[key] = RollupDelta(finest_level, *key)
                _apply(delta, c, sign)
                if c.failure is None:
                    continue
                fkey = (bucket, c.queue, c.name, c.failure.value)
                fdelta = failures.get(fkey)
                if fdelta is None:
                    fdelta = failures[fkey] = FailureDelta(
                        finest_level,
                        bucket,
                        c.queue,
                        c.name,
                        c.failure.value,
                        c.failure.error_type,
                        c.failure.pattern,
                    )
                _apply_failure(fdelta, c, sign)
        if after.error_type is not None:
            failed = attempt_failure(after)
            if failed is not None:
                attempts.setdefault((failed.job_id, failed.attempt), failed)
    plan = RollupPlan()
    for level, width in levels:
        if width == finest:
            level_rows, level_failures = rows, failures
        else:
            level_rows, level_failures = {}, {}
            for d in rows.values():
                key = (d.bucket - d.bucket % width, d.queue, d.name, d.status)
                coarse = level_rows.get(key)
                if coarse is None:
                    coarse = level_rows[key] = RollupDelta(level, *key)
                _merge(coarse, d)
            for f in failures.values():
                key = (f.bucket - f.bucket % width, f.queue, f.name, f.fingerprint)
                cf = level_failures.get(key)
                if cf is None:
                    cf = level_failures[key] = FailureDelta(
                        level, key[0], f.queue, f.name, f.fingerprint, f.error_type, f.pattern
                    )
                _merge_failure(cf, f)
        plan.rows += [d for d in level_rows.values() if not d.empty]
        plan.failures += [f for f in level_failures.values() if f.failures or f.last_seen]
    plan.rows.sort(key=lambda d: (d.level, d.bucket, d.queue, d.name, d.status))
    plan.histograms = _histograms(plan.rows)
    plan.failures.sort(key=lambda f: (f.level, f.bucket, f.queue, f.name, f.fingerprint))
    plan.attempt_failures = [attempts[k] for k in sorted(attempts)]
    return plan
