"""``GET .../analytics/failures``: failures by queue and job name, the top fingerprints,
the failure trend, the job names failing most, and the recommendations
(``recommendations``) with the evidence each rule read here."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis

from jobdeck_api import recommendations as rec
from jobdeck_api.analytics_live import live_queue_counts, live_sources
from jobdeck_api.analytics_models import (
    FailureBucket,
    FailureCount,
    FailureReport,
    FingerprintInfo,
    Freshness,
    Recommendation,
)
from jobdeck_api.analytics_scope import SQL, Scope, counts, coverage, rate
from jobdeck_api.analytics_totals import Group, Totals, add_durations, grouped_totals

TOP_FINGERPRINTS = 20
TOP_FAILING = 10
RETRY_SAMPLE = 500  # latest failed attempts per fingerprint the retry rules look at


def _failure_count(g: Group, queue: str | None, name: str | None) -> FailureCount:
    c = counts(g.by_status)
    return FailureCount(
        queue=queue,
        name=name,
        failed=c.failed,
        finished=c.finished,
        failure_rate=rate(c.failed, c.completed + c.failed),
    )


def _timeout_candidates(rows: list[asyncpg.Record]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (queue, name) whose failure counts let the timeout rule fire: failures, timeouts,
    a sample job (the others need no histogram read)."""
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        entry = per.setdefault((r["queue"], r["name"]), {"failures": 0, "timeouts": 0})
        entry["failures"] += int(r["failures"])
        if rec.is_timeout(r["error_type"]):
            entry["timeouts"] += int(r["failures"])
            entry["sample"] = r["sample_job_id"]
    return {k: v for k, v in per.items() if rec.may_time_out(v["failures"], v["timeouts"])}


async def _task_timeouts(
    pg: asyncpg.Pool, scope: Scope, totals: Totals, candidates: dict[tuple[str, str], Any]
) -> list[rec.TaskFailures]:
    """The timeout rule's inputs: each candidate's p95 duration and the timeout it ran with
    (the sample job's options, else its queue's config); the three reads at once."""
    if not candidates:
        return []
    _, job_rows, queue_rows = await asyncio.gather(
        add_durations(pg, scope, totals, sorted(candidates)),
        pg.fetch(SQL["job_timeouts"], [v["sample"] for v in candidates.values()]),
        pg.fetch(SQL["queue_timeouts"], sorted({q for q, _ in candidates})),
    )
    job_timeout = {r["id"]: float(r["timeout_s"]) for r in job_rows}
    queue_timeout = {r["queue"]: float(r["timeout_s"]) for r in queue_rows}
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
    # Two rounds of reads, each all at once: the rollups, then what they point at.
    totals, previous, print_rows, trend_rows, task_rows, sources = await asyncio.gather(
        grouped_totals(pg, scope),
        grouped_totals(pg, scope, w.previous()),
        pg.fetch(SQL["fingerprints"], *scope.args(), TOP_FINGERPRINTS),
        pg.fetch(SQL["status_buckets"], *scope.bucket_args()),
        pg.fetch(SQL["fingerprint_by_task"], *scope.args()),
        live_sources(redis, pg, now_ms),
    )
    prints = [FingerprintInfo(**dict(r)) for r in print_rows]
    per_bucket: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in trend_rows:
        per_bucket[r["start"]][r["status"]] += int(r["jobs"])
    by_name = [_failure_count(totals.groups[k], *k) for k in totals.names()]
    live, tasks, retries = await asyncio.gather(
        live_queue_counts(redis, sources, scope, totals.queues(), now_ms),
        _task_timeouts(pg, scope, totals, _timeout_candidates(task_rows)),
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
                failure_rate=rate(b["failed"], b["completed"] + b["failed"]),
            )
            for start, b in sorted(per_bucket.items())
        ],
        top_failing_jobs=sorted(
            (c for c in by_name if c.failed), key=lambda c: (-c.failed, c.queue or "", c.name or "")
        )[:TOP_FAILING],
        recommendations=[_finding(f) for f in rec.recommend(inputs)],
    )
