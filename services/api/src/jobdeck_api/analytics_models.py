"""Request and response models of the analytics endpoints (camelCase JSON, OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from jobdeck_api.analytics_range import Interval
from jobdeck_api.models import EndInstant, Model, QueueName, StartInstant


class AnalyticsQuery(Model):
    """The parameters every analytics endpoint takes."""

    start_date: StartInstant | None = Field(default=None, description="default: endDate - 24 h")
    end_date: EndInstant | None = Field(
        default=None, description="default: now; a date covers its whole day"
    )
    interval: Interval | None = Field(
        default=None,
        description="bucket size; default from the range: <= 12 h 15min, <= 14 d hour, else day",
    )
    queues: list[QueueName] | None = Field(
        default=None, max_length=100, description="only these queues (also `queues[]`, or a,b)"
    )
    job_name: str | None = Field(default=None, min_length=1, max_length=200)


class Coverage(Model):
    """What a response covers: whole buckets, so possibly wider than asked."""

    start: datetime
    end: datetime = Field(description="exclusive")
    interval: Interval
    buckets: int
    requested_start: datetime
    requested_end: datetime
    source: str = Field(description="the rollup level read: minute, hour or day")


class Freshness(Model):
    generated_at: datetime
    cached: bool = False
    cache_ttl_s: float
    recorder_behind: int | None = Field(
        default=None,
        description="events in the stream not yet recorded (and so not yet in these figures)",
    )


class Counts(Model):
    finished: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    success_rate: float | None = Field(
        default=None, description="completed / (completed + failed); null when both are 0"
    )


class TrendBucket(Counts):
    start: datetime


class TrendInfo(Model):
    trend: str = Field(description="improving, stable, declining or insufficient_data")
    slope_pp_per_bucket: float | None = None
    change_pp: float | None = None
    buckets_used: int = 0


class TrendSeries(Model):
    queue: str | None = Field(default=None, description="null: all queues together")
    totals: Counts
    trend: TrendInfo
    buckets: list[TrendBucket] = Field(description="buckets with finished jobs, oldest first")


class TrendMethodInfo(Model):
    window: int
    min_jobs: int
    min_buckets: int
    threshold_pp: float
    description: str


class SuccessTrends(Model):
    range: Coverage
    freshness: Freshness
    method: TrendMethodInfo
    overall: TrendSeries
    queues: list[TrendSeries]


class DurationStats(Model):
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class WaitStats(Model):
    avg: float | None = None
    p95: float | None = None


class LiveCounts(Model):
    """Right now, as the gateway's ``queueStats`` counts them."""

    waiting: int = 0
    active: int = 0
    delayed: int = 0
    workers: int = 0


class Performance(Counts):
    queue: str | None = None
    name: str | None = None
    throughput_per_hour: float = 0.0
    duration_ms: DurationStats = Field(default_factory=DurationStats)
    wait_ms: WaitStats = Field(default_factory=WaitStats)
    failure_rate: float | None = Field(default=None, description="failed / (completed + failed)")
    retry_rate: float | None = Field(
        default=None, description="jobs that needed more than one attempt / finished"
    )
    live: LiveCounts | None = Field(default=None, description="per queue and overall only")


class PerformanceReport(Model):
    range: Coverage
    freshness: Freshness
    percentile_error: float = Field(
        description="percentiles come from log-scale histograms: within this relative error"
    )
    overall: Performance
    queues: list[Performance]
    job_names: list[Performance]


class FailureCount(Model):
    queue: str | None = Field(default=None, description="null: all queues together")
    name: str | None = None
    failed: int
    finished: int
    failure_rate: float | None


class FingerprintInfo(Model):
    fingerprint: str
    error_type: str
    pattern: str = Field(description="the message with ids, numbers, paths... normalised away")
    count: int
    first_seen: datetime
    last_seen: datetime
    queues: list[str]
    job_names: list[str]
    sample_job_id: str
    sample_message: str


class FailureBucket(Model):
    start: datetime
    failed: int
    finished: int
    failure_rate: float | None


class Recommendation(Model):
    rule: str
    severity: str
    queue: str | None = None
    name: str | None = None
    fingerprint: str | None = None
    message: str
    evidence: dict[str, Any]


class FailureReport(Model):
    range: Coverage
    freshness: Freshness
    totals: FailureCount
    by_queue: list[FailureCount]
    by_job_name: list[FailureCount]
    fingerprints: list[FingerprintInfo]
    trend: list[FailureBucket]
    top_failing_jobs: list[FailureCount] = Field(
        description="the job names with the most failures in the range"
    )
    recommendations: list[Recommendation]
