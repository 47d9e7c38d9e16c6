"""``GET .../analytics/success-trends``: finished jobs per bucket, per queue and overall,
with the trend of the success rate (``trend``)."""

from __future__ import annotations

from collections import defaultdict

import asyncpg

from jobdeck_api.analytics_models import (
    Freshness,
    SuccessTrends,
    TrendBucket,
    TrendInfo,
    TrendMethodInfo,
    TrendSeries,
)
from jobdeck_api.analytics_scope import SQL, Scope, count_fields, counts, coverage
from jobdeck_api.trend import TrendMethod, success_trend

TREND = TrendMethod()


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
                TrendBucket(start=starts[i], **count_fields(b))
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
