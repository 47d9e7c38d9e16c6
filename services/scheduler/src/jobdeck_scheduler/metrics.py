"""Prometheus metrics of the scheduler (default registry, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FIRE_LAG = Histogram(
    "jobdeck_scheduler_fire_lag_seconds",
    "Actual enqueue time minus the slot's scheduled time, per fired run",
    ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
RUNS = Counter(
    "jobdeck_scheduler_runs_total",
    "Slots recorded, by outcome (a missed range counts each slot)",
    ["outcome"],
)
TICK_SECONDS = Histogram(
    "jobdeck_scheduler_tick_seconds",
    "One claim transaction: claim, decide, enqueue, record, commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FAILURES = Counter(
    "jobdeck_scheduler_failures_total", "Ticks or passes that failed and will be retried", ["kind"]
)
AUTO_DISABLED = Counter(
    "jobdeck_scheduler_auto_disabled_total", "Schedules disabled after repeated failed runs"
)
NEXT_DUE = Gauge(
    "jobdeck_scheduler_next_due_seconds", "Seconds until the next enabled schedule is due"
)
