"""The Redis layout of the jobdeck queues: every key and channel, named in one place.

Per job, a hash ``jobdeck:job:<id>``:

==========  ===================================================================
``q``       queue name
``name``    task name
``spec``    msgpack of ``JobSpec.envelope()`` (what the worker runs)
``prio``    priority 0..100
``max``     max attempts (absolute, counting earlier runs before a manual retry)
``off``     attempt offset (runs before a manual retry)
``runs``    runs started since it was enqueued (the attempt is ``off + runs``)
``hb``      runs handed back by a stopping worker (not charged to the budget)
``state``   ``waiting`` | ``delayed`` | ``active`` | ``done``
``score``   its score in the ready set (kept to put it back in place)
``token``   lease token of the run that owns it (``<runs>@<worker>``), while active
``worker``  instance id of that run's worker; ``started``: when it started (ms)
``abort``   who asked to cancel it while it ran ("" when nobody was named)
==========  ===================================================================

The hash of an unfinished job has no expiry, so an attempt count survives any wait (a
paused queue, a long backoff, no worker for days). A finished job's hash stays
``keep_ms`` (an hour by default) so that the same id is refused meanwhile (deterministic ids
of the scheduler) and a replayed finish finds nothing to do.

Per queue: ``jobdeck:queue:<q>`` (ready jobs, scored ``enqueued_ms - priority * weight``: a
higher priority first, FIFO within one), ``jobdeck:delayed:<q>`` (scored by due time; moved
to the ready set with their priority once due), ``jobdeck:active:<q>`` (running jobs, scored
by lease deadline; never scanned for work, so a fleet with thousands running claims the head
of the ready set in O(log n)), ``jobdeck:wake:<q>`` (a short list: each runnable job pushes
one token, and one idle worker blocked on BLPOP takes it, instead of a broadcast).
"""

from __future__ import annotations

JOB_PREFIX = "jobdeck:job:"
QUEUE_PREFIX = "jobdeck:queue:"
DELAYED_PREFIX = "jobdeck:delayed:"
ACTIVE_PREFIX = "jobdeck:active:"
WAKE_PREFIX = "jobdeck:wake:"
PAUSED = "jobdeck:paused"
CONTROL_CHANNEL = "jobdeck:control"
# Queue configuration the workers apply live (hash: queue -> concurrency per worker).
CONCURRENCY = "jobdeck:concurrency"
WORKERS = "jobdeck:workers"
WORKERS_INFO = "jobdeck:workers:info"
# A manual retry of attempt n claims this key (SET NX, with an expiry) in the enqueue
# script itself: two retries computed from the same row (the recorder a moment behind the
# first one's run) cannot both queue the job, so one attempt number never runs twice.
RETRY_CLAIM_PREFIX = "jobdeck:retry-claim:"
RETRY_CLAIM_TTL_MS = 86_400_000

MIN_PRIORITY, MAX_PRIORITY = 0, 100
# Ready jobs are scored "now - priority * weight": a higher priority sorts before every
# lower-priority job enqueued in the last ~115 days, FIFO within one priority.
PRIORITY_WEIGHT_MS = 10_000_000_000
# How long a finished job's hash stays (refuses its id, answers a replayed finish).
KEEP_MS = 3_600_000
# Wake tokens kept per queue when no worker is waiting for one (each costs one empty claim).
WAKE_BOUND = 64


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def queue_key(queue: str) -> str:
    """The ready set of ``queue``: jobs that may start now, best first."""
    return QUEUE_PREFIX + queue


def delayed_key(queue: str) -> str:
    return DELAYED_PREFIX + queue


def active_key(queue: str) -> str:
    return ACTIVE_PREFIX + queue


def wake_key(queue: str) -> str:
    return WAKE_PREFIX + queue


def retry_claim_key(job_id: str, attempt_offset: int) -> str:
    return f"{RETRY_CLAIM_PREFIX}{job_id}:{attempt_offset}"
