"""What one analytics request reads, and the counts and rates every report shares.

A ``Scope`` is the request's window (``analytics_range``), its queues (None: every queue)
and job name, turned into the parameters of the rollup queries (``sql/analytics.sql``).
Rates: success = completed / (completed + failed), failure = failed / (completed +
failed) — a cancelled job is neither; ``finished`` counts all three final states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobdeck.sql import load_queries

from jobdeck_api.analytics_models import Counts, Coverage
from jobdeck_api.analytics_range import Window

SQL = load_queries("jobdeck_api", "sql/analytics.sql")


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


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def count_fields(by_status: dict[str, int]) -> dict[str, Any]:
    """The fields of ``Counts`` (and of the models that extend it) for finished jobs by status."""
    c, f, x = (
        by_status.get("completed", 0),
        by_status.get("failed", 0),
        by_status.get("cancelled", 0),
    )
    return {
        "finished": c + f + x,
        "completed": c,
        "failed": f,
        "cancelled": x,
        "success_rate": rate(c, c + f),
    }


def counts(by_status: dict[str, int]) -> Counts:
    return Counts(**count_fields(by_status))
