"""Is a queue's success rate improving, stable or declining? (pure)

The method, also returned with every answer so a reader can check it:

- take the last ``window`` buckets of the range (``TrendMethod.window``, 12 by default);
- keep the buckets with at least ``min_jobs`` jobs that completed or failed (a bucket of
  two jobs says little); fewer than ``min_buckets`` such buckets: ``insufficient_data``;
- fit a least-squares line to the success rate (completed / (completed + failed), in
  percentage points) against the bucket's position in the window;
- ``change`` = the slope times the window's span (window - 1 buckets): how far the fitted
  rate moves across the window. ``change >= +threshold_pp``: ``improving``;
  ``<= -threshold_pp``: ``declining``; otherwise ``stable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Trend(StrEnum):
    IMPROVING = "improving"
    STABLE = "stable"
    DECLINING = "declining"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class TrendMethod:
    window: int = 12
    min_jobs: int = 5
    min_buckets: int = 3
    threshold_pp: float = 5.0

    def describe(self) -> str:
        return (
            f"least-squares slope of the success rate (completed / (completed + failed), in "
            f"percentage points) over the last {self.window} buckets, using buckets with at "
            f"least {self.min_jobs} completed or failed jobs; the fitted change across the "
            f"window >= +{self.threshold_pp:g} pp is improving, <= -{self.threshold_pp:g} pp "
            f"declining, otherwise stable; fewer than {self.min_buckets} usable buckets: "
            "insufficient_data"
        )


@dataclass(frozen=True, slots=True)
class TrendResult:
    trend: Trend
    slope_pp_per_bucket: float | None
    change_pp: float | None
    buckets_used: int


def success_trend(
    completed: Sequence[int], failed: Sequence[int], method: TrendMethod = TrendMethod()
) -> TrendResult:
    """The trend of per-bucket counts (oldest first, one entry per bucket of the range)."""
    if len(completed) != len(failed):
        raise ValueError("completed and failed must have one entry per bucket")
    tail = range(max(len(completed) - method.window, 0), len(completed))
    points = [
        (float(i), 100.0 * completed[i] / (completed[i] + failed[i]))
        for i in tail
        if completed[i] + failed[i] >= method.min_jobs
    ]
    if len(points) < method.min_buckets:
        return TrendResult(Trend.INSUFFICIENT_DATA, None, None, len(points))
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx if sxx else 0.0
    change = slope * (min(method.window, len(completed)) - 1)
    if change >= method.threshold_pp:
        trend = Trend.IMPROVING
    elif change <= -method.threshold_pp:
        trend = Trend.DECLINING
    else:
        trend = Trend.STABLE
    return TrendResult(trend, round(slope, 3), round(change, 2), len(points))
