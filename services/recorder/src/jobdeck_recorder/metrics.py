"""Prometheus metrics of the recorder (default registry, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "jobdeck_recorder_events_total", "Stream events recorded (committed and acked)", ["type"]
)
MALFORMED = Counter(
    "jobdeck_recorder_malformed_total",
    "Stream entries refused and copied to the dead-letter stream",
    ["reason"],
)
SKIPPED = Counter(
    "jobdeck_recorder_skipped_total",
    "Job events recorded without effect because they conflict with the row",
    ["reason"],
)
ROWS = Counter("jobdeck_recorder_rows_written_total", "Job rows written", ["op"])
LOGS = Counter("jobdeck_recorder_logs_written_total", "Job log lines inserted")
CLAIMED = Counter(
    "jobdeck_recorder_claimed_total", "Entries taken over from a consumer that stopped acking"
)
FAILURES = Counter(
    "jobdeck_recorder_failures_total", "Batches that could not be written or acked yet", ["kind"]
)
BATCH_SECONDS = Histogram(
    "jobdeck_recorder_batch_seconds",
    "Time to record one batch: decode, write, commit, ack",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram(
    "jobdeck_recorder_batch_entries",
    "Entries per batch",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000),
)
LAG = Gauge(
    "jobdeck_recorder_lag", "Stream entries not yet delivered to the recorder group (XINFO lag)"
)
PENDING = Gauge(
    "jobdeck_recorder_pending", "Entries delivered to the recorder group but not yet acked"
)
STREAM_LENGTH = Gauge("jobdeck_stream_length", "Entries in the event stream jobdeck:events")
DEAD_LETTERS = Gauge(
    "jobdeck_dead_letters", "Entries in the dead-letter stream (refused by the recorder)"
)
EVENTS_PER_SECOND = Gauge(
    "jobdeck_recorder_events_per_second", "Events recorded per second by this instance, recently"
)
JANITOR_CHECKED = Counter(
    "jobdeck_recorder_janitor_checked_total",
    "Stale unfinished jobs the janitor looked up in Redis",
)
JANITOR_LOST = Counter(
    "jobdeck_recorder_janitor_lost_total",
    "Jobs gone from Redis while unfinished in Postgres, failed by the janitor (JobLost)",
)
PRUNED = Counter(
    "jobdeck_pruner_rows_deleted_total", "Rows deleted past their queue's retention", ["table"]
)
PRUNER_BATCHES = Counter("jobdeck_pruner_batches_total", "Delete batches run by the pruner")
PRUNER_PARTITIONS_DROPPED = Counter(
    "jobdeck_pruner_partitions_dropped_total", "Monthly job_logs partitions dropped whole"
)
PRUNER_PARTITION_ERRORS = Counter(
    "jobdeck_pruner_partition_errors_total", "Failed creations or drops of job_logs partitions"
)
PRUNER_PASS_SECONDS = Histogram(
    "jobdeck_pruner_pass_seconds",
    "Time of one retention pass (batches and pauses)",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300),
)
PRUNER_LAST_PASS = Gauge(
    "jobdeck_pruner_last_pass_timestamp_seconds", "When this instance last finished a pass"
)
