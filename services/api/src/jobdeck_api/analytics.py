"""Analytics answers built from the rollups: success trends, performance, failures.

Each builder reads a handful of grouped rollup queries (``sql/analytics.sql``) for the
request's window and queue scope, and shapes them with the pure pieces: percentiles from
``jobdeck.histogram``, trends from ``trend``, recommendations from ``recommendations``.
Rates: success = completed / (completed + failed), failure = failed / (completed +
failed) — a cancelled job is neither; ``finished`` counts all three final states.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from jobdeck.depth import live_workers, queue_depths, workers_per_queue
from jobdeck.histogram import RELATIVE_ERROR, Histogram, merge, percentile
from jobdeck.sql import SHARED, load_queries
from redis.asyncio import Redis

from jobdeck_api import recommendations as rec
from jobdeck_api.analytics_models import (
    Counts,
    Coverage,
    DurationStats,
    FailureBucket,
    FailureCount,
    FailureReport,
    FingerprintInfo,
    Freshness,
    Performance,
    PerformanceReport,
    Recommendation,
    SuccessTrends,
    TrendBucket,
    TrendInfo,
    TrendMethodInfo,
    TrendSeries,
    WaitStats,
)
from jobdeck_api.analytics_models import LiveCounts as LiveModel
from jobdeck_api.analytics_range import Window
from jobdeck_api.trend import TrendMethod, success_trend

SQL = load_queries("jobdeck_api", "sql/analytics.sql")
TOP_FINGERPRINTS = 20
TOP_FAILING = 10
TREND = TrendMethod()
RETRY_SAMPLE = 500  # latest failed attempts per fingerprint the retry rules look at


@dataclass(frozen=True, slots=True)
class Scope:
    """The rows one request may read: its window, queues (None: every queue) and job name."""

    window: Window
    queues: list[str] | None
    job_name: str | None

    def args(self, window: Window | None = None) -> tuple[Any, ...]:
        """Parameters of the range queries: the window's tiles, queues, job name."""
        tiles = (window or self.window).tiles()
        return (
            [t[0] for t in tiles],
            [t[1] for t in tiles],
            [t[2] for t in tiles],
            self.queues,
            self.job_name,
        )

    def bucket_args(self) -> tuple[Any, ...]:
        """Parameters of the per-bucket series: the interval's own level."""
        w = self.window
        return (w.level, w.start, w.end, self.queues, self.job_name, w.width)


def coverage(w: Window) -> Coverage:
    return Coverage(
        start=w.start,
        end=w.end,
        interval=w.interval,
        buckets=w.buckets,
        requested_start=w.requested_start,
        requested_end=w.requested_end,
        source=w.level,
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def counts(by_status: dict[str, int]) -> Counts:
    c, f, x = (
        by_status.get("completed", 0),
        by_status.get("failed", 0),
        by_status.get("cancelled", 0),
    )
    return Counts(
        finished=c + f + x, completed=c, failed=f, cancelled=x, success_rate=_rate(c, c + f)
    )


# -- success trends ----------------------------------------------------------------------


async def success_trends(
    pg: asyncpg.Pool, scope: Scope, freshness: Freshness, method: TrendMethod = TREND
) -> SuccessTrends:
    w = scope.window
    rows = await pg.fetch(SQL["status_buckets"], *scope.bucket_args())
    starts = w.bucket_starts()
    index = {s: i for i, s in enumerate(starts)}
    per: dict[str | None, list[dict[str, int]]] = defaultdict(lambda: [{} for _ in starts])
    for r in rows:
        i = index.get(r["start"])
        if i is None:
            continue
        for key in (None, r["queue"]):
            bucket = per[key][i]
            bucket[r["status"]] = bucket.get(r["status"], 0) + int(r["jobs"])
    if None not in per:
        per[None] = [{} for _ in starts]

    def series(queue: str | None) -> TrendSeries:
        buckets = per[queue]
        total: dict[str, int] = defaultdict(int)
        for b in buckets:
            for k, v in b.items():
                total[k] += v
        result = success_trend(
            [b.get("completed", 0) for b in buckets], [b.get("failed", 0) for b in buckets], method
        )
        return TrendSeries(
            queue=queue,
            totals=counts(total),
            trend=TrendInfo(
                trend=result.trend.value,
                slope_pp_per_bucket=result.slope_pp_per_bucket,
                change_pp=result.change_pp,
                buckets_used=result.buckets_used,
            ),
            buckets=[
                TrendBucket(start=starts[i], **counts(b).model_dump())
                for i, b in enumerate(buckets)
                if any(b.values())
            ],
        )

    return SuccessTrends(
        range=coverage(w),
        freshness=freshness,
        method=TrendMethodInfo(
            window=method.window,
            min_jobs=method.min_jobs,
            min_buckets=method.min_buckets,
            threshold_pp=method.threshold_pp,
            description=method.describe(),
        ),
        overall=series(None),
        queues=[series(q) for q in sorted(k for k in per if k is not None)],
    )


# -- performance -------------------------------------------------------------------------


@dataclass
class _Group:
    """Totals of one (queue, name) group, or of a queue, or of everything."""

    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    retried: int = 0
    timed: int = 0
    duration_sum: int = 0
    duration_min: int | None = None
    duration_max: int | None = None
    waited: int = 0
    wait_sum: int = 0
    duration_hist: list[Histogram] = field(default_factory=list)
    wait_hist: list[Histogram] = field(default_factory=list)

    def add(self, r: asyncpg.Record) -> None:
        self.by_status[r["status"]] += int(r["jobs"])
        self.retried += int(r["retried"])
        self.timed += int(r["timed"])
        self.duration_sum += int(r["duration_sum"])
        self.waited += int(r["waited"])
        self.wait_sum += int(r["wait_sum"])
        for attr, value, pick in (
            ("duration_min", r["duration_min"], min),
            ("duration_max", r["duration_max"], max),
        ):
            if value is not None:
                current = getattr(self, attr)
                setattr(self, attr, value if current is None else pick(current, value))

    def p95_duration(self) -> float | None:
        return percentile(merge(self.duration_hist), 0.95, self.duration_min, self.duration_max)

    def performance(self, hours: float, queue: str | None, name: str | None) -> Performance:
        c = counts(self.by_status)
        hist = merge(self.duration_hist)
        waits = merge(self.wait_hist)
        lo, hi = self.duration_min, self.duration_max
        return Performance(
            **c.model_dump(),
            queue=queue,
            name=name,
            throughput_per_hour=round(c.finished / hours, 3) if hours else 0.0,
            duration_ms=DurationStats(
                avg=round(self.duration_sum / self.timed, 1) if self.timed else None,
                min=lo,
                max=hi,
                p50=percentile(hist, 0.5, lo, hi),
                p95=percentile(hist, 0.95, lo, hi),
                p99=percentile(hist, 0.99, lo, hi),
            ),
            wait_ms=WaitStats(
                avg=round(self.wait_sum / self.waited, 1) if self.waited else None,
                p95=percentile(waits, 0.95, 0),
            ),
            failure_rate=_rate(c.failed, c.completed + c.failed),
            retry_rate=_rate(self.retried, c.finished),
        )


@dataclass
class Totals:
    groups: dict[tuple[str | None, str | None], _Group]

    def queues(self) -> list[str]:
        return sorted({q for q, n in self.groups if q is not None and n is None})

    def names(self) -> list[tuple[str, str]]:
        return sorted((q, n) for q, n in self.groups if q is not None and n is not None)


async def grouped_totals(
    pg: asyncpg.Pool, scope: Scope, window: Window | None = None, histograms: bool = False
) -> Totals:
    """Totals per (queue, name), per queue and overall; with their histograms if asked."""
    queries = [pg.fetch(SQL["totals"], *scope.args(window))]
    if histograms:
        queries.append(pg.fetch(SQL["histograms"], *scope.args(window)))
    results = await asyncio.gather(*queries)
    groups: dict[tuple[str | None, str | None], _Group] = defaultdict(_Group)
    groups[(None, None)] = _Group()
    for r in results[0]:
        for key in ((None, None), (r["queue"], None), (r["queue"], r["name"])):
            groups[key].add(r)
    totals = Totals(groups)
    for r in results[1] if histograms else ():
        hist = {int(k): int(v) for k, v in r["hist"].items()}
        for key in ((None, None), (r["queue"], None), (r["queue"], r["name"])):
            group = totals.groups[key]
            (group.duration_hist if r["kind"] == "d" else group.wait_hist).append(hist)
    return totals


async def live_queue_counts(
    redis: Redis, pg: asyncpg.Pool, scope: Scope, seen: Iterable[str], now_ms: int
) -> dict[str, LiveModel]:
    """The gateway's ``queueStats`` numbers (``jobdeck.depth``) for the queues in scope: the
    requested ones, else those with figures, recorded jobs or live workers."""
    known, workers, recorded = await asyncio.gather(
        pg.fetch(SHARED["known_queues"]),
        live_workers(redis, now_ms),
        pg.fetch(SHARED["active_counts"]),
    )
    if scope.queues is not None:
        names = set(scope.queues)
    else:
        names = set(seen) | {r["queue"] for r in known}
        for w in workers:
            names.update(w.queues)
    if not names:
        return {}
    running = {r["queue"]: int(r["n"]) for r in recorded}
    depths = await queue_depths(redis, sorted(names), now_ms, workers, running)
    serving = workers_per_queue(workers)
    return {
        q: LiveModel(
            waiting=d.waiting, active=d.active, delayed=d.delayed, workers=serving.get(q, 0)
        )
        for q, d in depths.items()
    }


async def performance(
    pg: asyncpg.Pool, redis: Redis, scope: Scope, freshness: Freshness, now_ms: int
) -> PerformanceReport:
    totals = await grouped_totals(pg, scope, histograms=True)
    hours = scope.window.hours
    live = await live_queue_counts(redis, pg, scope, totals.queues(), now_ms)
    overall = totals.groups[(None, None)].performance(hours, None, None)
    overall.live = LiveModel(
        waiting=sum(c.waiting for c in live.values()),
        active=sum(c.active for c in live.values()),
        delayed=sum(c.delayed for c in live.values()),
        workers=sum(c.workers for c in live.values()),
    )
    per_queue = []
    for q in sorted(set(totals.queues()) | set(live)):
        perf = totals.groups[(q, None)].performance(hours, q, None)
        perf.live = live.get(q, LiveModel())
        per_queue.append(perf)
    return PerformanceReport(
        range=coverage(scope.window),
        freshness=freshness,
        percentile_error=round(RELATIVE_ERROR, 4),
        overall=overall,
        queues=per_queue,
        job_names=[totals.groups[k].performance(hours, *k) for k in totals.names()],
    )


# -- failures ----------------------------------------------------------------------------


def _failure_count(g: _Group, queue: str | None, name: str | None) -> FailureCount:
    c = counts(g.by_status)
    return FailureCount(
        queue=queue,
        name=name,
        failed=c.failed,
        finished=c.finished,
        failure_rate=_rate(c.failed, c.completed + c.failed),
    )


async def _task_timeouts(pg: asyncpg.Pool, scope: Scope, totals: Totals) -> list[rec.TaskFailures]:
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for r in await pg.fetch(SQL["fingerprint_by_task"], *scope.args()):
        entry = per.setdefault((r["queue"], r["name"]), {"failures": 0, "timeouts": 0})
        entry["failures"] += int(r["failures"])
        if rec.is_timeout(r["error_type"]):
            entry["timeouts"] += int(r["failures"])
            entry["sample"] = r["sample_job_id"]
    candidates = {k: v for k, v in per.items() if v["timeouts"]}
    if not candidates:
        return []
    samples = [v["sample"] for v in candidates.values()]
    job_timeout = {
        r["id"]: float(r["timeout_s"]) for r in await pg.fetch(SQL["job_timeouts"], samples)
    }
    queue_timeout = {
        r["queue"]: float(r["timeout_s"])
        for r in await pg.fetch(SQL["queue_timeouts"], sorted({q for q, _ in candidates}))
    }
    found = []
    for (queue, name), v in sorted(candidates.items()):
        timeout_s, source = job_timeout.get(v["sample"]), f"options of job {v['sample']}"
        if timeout_s is None:
            timeout_s, source = queue_timeout.get(queue), f"config of queue {queue}"
        found.append(
            rec.TaskFailures(
                queue=queue,
                name=name,
                failures=v["failures"],
                timeouts=v["timeouts"],
                p95_duration_ms=totals.groups[(queue, name)].p95_duration(),
                timeout_ms=None if timeout_s is None else timeout_s * 1000,
                timeout_source=source if timeout_s is not None else None,
            )
        )
    return found


async def _retry_outcomes(
    pg: asyncpg.Pool, scope: Scope, prints: Sequence[FingerprintInfo]
) -> list[rec.RetryOutcome]:
    if not prints:
        return []
    w = scope.window
    rows = await pg.fetch(
        SQL["retry_outcomes"],
        w.start,
        w.end,
        scope.queues,
        scope.job_name,
        [p.fingerprint for p in prints],
        RETRY_SAMPLE,
    )
    info = {p.fingerprint: p for p in prints}
    return [
        rec.RetryOutcome(
            fingerprint=r["fingerprint"],
            error_type=info[r["fingerprint"]].error_type,
            pattern=info[r["fingerprint"]].pattern,
            retried=int(r["retried"]),
            recovered=int(r["recovered"]),
        )
        for r in rows
    ]


def _finding(f: rec.Finding) -> Recommendation:
    return Recommendation(
        rule=f.rule,
        severity=f.severity,
        queue=f.queue,
        name=f.name,
        fingerprint=f.fingerprint,
        message=f.message,
        evidence=f.evidence,
    )


async def failures(
    pg: asyncpg.Pool, redis: Redis, scope: Scope, freshness: Freshness, now_ms: int
) -> FailureReport:
    w = scope.window
    totals, previous, print_rows, trend_rows = await asyncio.gather(
        grouped_totals(pg, scope, histograms=True),
        grouped_totals(pg, scope, w.previous()),
        pg.fetch(SQL["fingerprints"], *scope.args(), TOP_FINGERPRINTS),
        pg.fetch(SQL["status_buckets"], *scope.bucket_args()),
    )
    prints = [FingerprintInfo(**dict(r)) for r in print_rows]
    per_bucket: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in trend_rows:
        per_bucket[r["start"]][r["status"]] += int(r["jobs"])
    by_name = [_failure_count(totals.groups[k], *k) for k in totals.names()]
    live, tasks, retries = await asyncio.gather(
        live_queue_counts(redis, pg, scope, totals.queues(), now_ms),
        _task_timeouts(pg, scope, totals),
        _retry_outcomes(pg, scope, prints),
    )
    inputs = rec.Inputs(
        tasks=tasks,
        retries=retries,
        windows=[
            rec.QueueWindow(
                queue=q,
                failed=totals.groups[(q, None)].by_status.get("failed", 0),
                finished=sum(
                    totals.groups[(q, None)].by_status.get(s, 0) for s in ("completed", "failed")
                ),
                previous_failed=previous.groups[(q, None)].by_status.get("failed", 0),
                previous_finished=sum(
                    previous.groups[(q, None)].by_status.get(s, 0) for s in ("completed", "failed")
                ),
            )
            for q in totals.queues()
        ],
        live=[rec.QueueLive(q, c.waiting, c.workers) for q, c in sorted(live.items())],
    )
    return FailureReport(
        range=coverage(w),
        freshness=freshness,
        totals=_failure_count(totals.groups[(None, None)], None, None),
        by_queue=[_failure_count(totals.groups[(q, None)], q, None) for q in totals.queues()],
        by_job_name=by_name,
        fingerprints=prints,
        trend=[
            FailureBucket(
                start=start,
                failed=b["failed"],
                finished=b["completed"] + b["failed"] + b["cancelled"],
                failure_rate=_rate(b["failed"], b["completed"] + b["failed"]),
            )
            for start, b in sorted(per_bucket.items())
        ],
        top_failing_jobs=sorted(
            (c for c in by_name if c.failed), key=lambda c: (-c.failed, c.queue or "", c.name or "")
        )[:TOP_FAILING],
        recommendations=[_finding(f) for f in rec.recommend(inputs)],
    )
