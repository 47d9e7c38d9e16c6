"""The jobdeck queue protocol: its Redis layout and every script that touches it.

- ``layout``: key names, and the documentation of what each key holds;
- ``spec``: ``JobSpec``, what a producer asks to run;
- ``producer``: ``QueueClient`` (enqueue, cancel, pause/resume, live concurrency, counts);
- ``consumer``: ``QueueConsumer``, a worker's claim / wait / renew / finish on one queue;
- ``lua/``: the scripts (enqueue, cancel, claim with lease expiry and promotion of due
  delayed jobs, renew, restore, finish), each one atomic step of the protocol.

Producers and services import from here (``from jobdeck.queues import QueueClient``).
"""

from jobdeck.queues.consumer import (
    ClaimBatch,
    Claimed,
    Finish,
    Outcome,
    QueueConsumer,
    Renewal,
)
from jobdeck.queues.layout import (
    ACTIVE_PREFIX,
    CONCURRENCY,
    CONTROL_CHANNEL,
    DELAYED_PREFIX,
    JOB_PREFIX,
    KEEP_MS,
    MAX_PRIORITY,
    MIN_PRIORITY,
    PAUSED,
    PRIORITY_WEIGHT_MS,
    QUEUE_PREFIX,
    RETRY_CLAIM_PREFIX,
    RETRY_CLAIM_TTL_MS,
    WAKE_PREFIX,
    WORKERS,
    WORKERS_INFO,
    active_key,
    delayed_key,
    job_key,
    queue_key,
    retry_claim_key,
    wake_key,
)
from jobdeck.queues.producer import (
    CancelOutcome,
    EnqueueOutcome,
    QueueClient,
    QueueCounts,
    queue_counts,
)
from jobdeck.queues.spec import JobSpec

__all__ = [
    "ACTIVE_PREFIX",
    "CONCURRENCY",
    "CONTROL_CHANNEL",
    "DELAYED_PREFIX",
    "JOB_PREFIX",
    "KEEP_MS",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "PAUSED",
    "PRIORITY_WEIGHT_MS",
    "QUEUE_PREFIX",
    "RETRY_CLAIM_PREFIX",
    "RETRY_CLAIM_TTL_MS",
    "WAKE_PREFIX",
    "WORKERS",
    "WORKERS_INFO",
    "CancelOutcome",
    "ClaimBatch",
    "Claimed",
    "EnqueueOutcome",
    "Finish",
    "JobSpec",
    "Outcome",
    "QueueClient",
    "QueueConsumer",
    "QueueCounts",
    "Renewal",
    "active_key",
    "delayed_key",
    "job_key",
    "queue_counts",
    "queue_key",
    "retry_claim_key",
    "wake_key",
]
