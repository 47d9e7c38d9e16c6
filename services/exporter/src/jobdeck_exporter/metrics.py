"""Prometheus metrics of the exporter (default registry, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EXPORTS = Counter(
    "jobdeck_exporter_exports_total",
    "Exports finished, by format and outcome",
    ["format", "outcome"],
)
ROWS = Counter("jobdeck_exporter_rows_total", "Job rows written to export files", ["format"])
BYTES = Counter("jobdeck_exporter_bytes_total", "Bytes of export files stored", ["format"])
SECONDS = Histogram(
    "jobdeck_exporter_export_seconds",
    "Wall time of one export, claim to stored",
    ["format"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
ROWS_PER_SECOND = Gauge(
    "jobdeck_exporter_rows_per_second", "Rows per second of the last finished export", ["format"]
)
RUNNING = Gauge("jobdeck_exporter_running", "Exports this replica is running")
TAKEN_OVER = Counter(
    "jobdeck_exporter_taken_over_total", "Exports claimed from a replica that stopped (XAUTOCLAIM)"
)
EXPIRED = Counter("jobdeck_exporter_expired_total", "Expired exports deleted (rows and files)")
