"""Prometheus metrics of a worker process, labelled by queue."""

from __future__ import annotations

from jobdeck.events import EventType
from prometheus_client import Counter, Gauge, Histogram

JOBS_STARTED = Counter("jobdeck_worker_jobs_started_total", "Job attempts started", ["queue"])
JOBS_COMPLETED = Counter("jobdeck_worker_jobs_completed_total", "Jobs completed", ["queue"])
JOBS_FAILED = Counter("jobdeck_worker_jobs_failed_total", "Jobs failed for good", ["queue"])
JOBS_RETRIED = Counter(
    "jobdeck_worker_jobs_retried_total", "Attempts that failed or were handed back", ["queue"]
)
JOBS_CANCELLED = Counter("jobdeck_worker_jobs_cancelled_total", "Jobs aborted", ["queue"])
JOBS_RUNNING = Gauge("jobdeck_worker_jobs_running", "Jobs running now", ["queue"])
QUEUE_PAUSED = Gauge("jobdeck_worker_queue_paused", "1 while the queue is paused", ["queue"])
RUN_SECONDS = Histogram(
    "jobdeck_worker_job_run_seconds",
    "Run time of an attempt",
    ["queue"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
LEASES_LOST = Counter(
    "jobdeck_worker_leases_lost_total",
    "Runs stopped because their job's lease went to another run",
    ["queue"],
)
LOOP_LAG = Gauge(
    "jobdeck_worker_loop_lag_seconds",
    "How late the event loop answers (a task blocking it holds every job of the process)",
)
LOOP_STALLS = Counter(
    "jobdeck_worker_loop_stalls_total", "Times the event loop was blocked past the warning"
)
EVENTS_DROPPED = Counter(
    "jobdeck_worker_events_dropped_total", "Progress/log events dropped: buffer full"
)
EVENT_FLUSH_ERRORS = Counter(
    "jobdeck_worker_event_flush_errors_total", "Failed writes of buffered events"
)


class QueueMetrics:
    """The label children of one queue, resolved once (label lookups cost per job)."""

    def __init__(self, queue: str) -> None:
        self.started = JOBS_STARTED.labels(queue)
        self.running = JOBS_RUNNING.labels(queue)
        self.paused = QUEUE_PAUSED.labels(queue)
        self.run_seconds = RUN_SECONDS.labels(queue)
        self._finished = {
            EventType.COMPLETED: JOBS_COMPLETED.labels(queue),
            EventType.FAILED: JOBS_FAILED.labels(queue),
            EventType.RETRYING: JOBS_RETRIED.labels(queue),
            EventType.CANCELLED: JOBS_CANCELLED.labels(queue),
        }

    def finished(self, etype: EventType, duration_ms: int | None) -> None:
        counter = self._finished.get(etype)
        if counter is not None:
            counter.inc()
        if duration_ms is not None:
            self.run_seconds.observe(duration_ms / 1000)
