"""Pure decisions of the command API: may this job be retried or cancelled, and with
which options is a job enqueued. No I/O here; the handlers act on what these return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobdeck.events import JobStatus, current_attempt
from jobdeck.queues import JobSpec

from jobdeck_api.job_command_models import EnqueueRequest

RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
CANCELLABLE = frozenset({JobStatus.WAITING, JobStatus.DELAYED, JobStatus.ACTIVE})
FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

# Why a retry is skipped when Redis refuses it: the job is queued or running again, or
# this attempt's retry was already claimed (and may have run before the recorder caught up).
RETRY_PENDING = "a retry of this job is already queued or running"

LIBRARY_DEFAULTS: dict[str, Any] = {
    "max_attempts": JobSpec.__dataclass_fields__["max_attempts"].default,
    "backoff_ms": JobSpec.__dataclass_fields__["backoff_ms"].default,
    "timeout_s": JobSpec.__dataclass_fields__["timeout_s"].default,
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None


def may_retry(status: str, added_attempt: int | None = 1) -> Verdict:
    """``added_attempt`` 0 means the recorder has not yet seen the job's ``added`` event,
    so the row lacks the name, data and options a retry needs."""
    if status in RETRYABLE and added_attempt == 0:
        return Verdict(False, "job's enqueue record has not been recorded yet; try again")
    if status in RETRYABLE:
        return Verdict(True)
    return Verdict(False, f"job is {status}; only failed or cancelled jobs can be retried")


def may_cancel(status: str) -> Verdict:
    if status in CANCELLABLE:
        return Verdict(True)
    return Verdict(False, f"job is {status}; only waiting, delayed or active jobs can be cancelled")


def may_delete(status: str) -> Verdict:
    if status in FINISHED:
        return Verdict(True)
    return Verdict(False, f"job is {status}; only finished jobs can be deleted (cancel it first)")


def may_promote(status: str) -> Verdict:
    if status == JobStatus.DELAYED:
        return Verdict(True)
    return Verdict(False, f"job is {status}; only a delayed job can be promoted")


def may_reprioritize(status: str) -> Verdict:
    if status in (JobStatus.WAITING, JobStatus.DELAYED):
        return Verdict(True)
    return Verdict(False, f"job is {status}; only a waiting or delayed job's priority can change")


def retry_max_attempts(attempts: int, max_attempts: int) -> int:
    """Workers treat ``max_attempts`` as absolute across retries (attempt = offset + try),
    so a manual retry keeps the job's unused budget and always allows one more run: a job
    that failed its 3rd of 3 attempts runs a 4th; one cancelled after 1 of 3 has 2 left."""
    return max(max_attempts, attempts + 1)


def spec_for_retry(row: Mapping[str, Any]) -> JobSpec:
    """Re-enqueue a finished job from its row under the same id; the next attempt is n+1.

    n is the attempt of the row's latest event, not ``attempts`` (runs started): a job
    cancelled before it ran has run 0 times but its cancel belongs to attempt 1, and the
    retry's ``added`` must be newer than that cancel or the recorder would ignore it.
    """
    options = row["options"] or {}
    offset = current_attempt(row["attempts"], row["version"])
    return JobSpec(
        queue=row["queue"],
        name=row["name"],
        data=row["data"],
        priority=row["priority"],
        max_attempts=retry_max_attempts(offset, row["max_attempts"]),
        backoff_ms=int(options.get("backoff_ms", LIBRARY_DEFAULTS["backoff_ms"])),
        timeout_s=float(options.get("timeout_s", LIBRARY_DEFAULTS["timeout_s"])),
        job_id=row["id"],
        attempt_offset=offset,
        template_id=row["template_id"],
        schedule_id=row["schedule_id"],
    )


def spec_for_enqueue(
    req: EnqueueRequest,
    now_ms: int,
    template: Mapping[str, Any] | None,
    queue_config: Mapping[str, Any] | None,
) -> JobSpec:
    """The job to queue: explicit fields win, then the template's, then the queue's
    config, then the library defaults."""

    def pick(field: str, explicit: Any) -> Any:
        if explicit is not None:
            return explicit
        if template is not None and template.get(field) is not None:
            return template[field]
        if queue_config is not None and field in queue_config:
            return queue_config[field]
        return LIBRARY_DEFAULTS[field]

    queue = req.queue or (template["queue"] if template else None)
    name = req.name or (template["task"] if template else None)
    if queue is None or name is None:
        raise ValueError("queue and name are required")
    data = req.data if req.data is not None else (template or {}).get("data")
    priority = req.priority if req.priority is not None else (template or {}).get("priority", 0)
    run_at: int | None = None
    if req.delay_ms:
        run_at = now_ms + req.delay_ms
    elif req.run_at is not None:
        run_at = to_ms(req.run_at)
    kwargs: dict[str, Any] = {}
    if req.job_id is not None:
        kwargs["job_id"] = req.job_id
    return JobSpec(
        queue=queue,
        name=name,
        data=data,
        priority=int(priority or 0),
        max_attempts=int(pick("max_attempts", req.max_attempts)),
        backoff_ms=int(pick("backoff_ms", req.backoff_ms)),
        timeout_s=float(pick("timeout_s", req.timeout_s)),
        run_at_ms=run_at,
        template_id=template["id"] if template else None,
        **kwargs,
    )


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
