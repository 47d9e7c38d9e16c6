"""``JobSpec``: what a producer asks to run, and what the worker receives (its envelope)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import msgpack

from jobdeck.events import Event, EventType, JobStatus
from jobdeck.queues.layout import PRIORITY_WEIGHT_MS


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run a job, and to run it again later from its Postgres row."""

    queue: str
    name: str
    data: Any = None
    priority: int = 0
    max_attempts: int = 3
    backoff_ms: int = 1000
    timeout_s: float = 300.0
    run_at_ms: int | None = None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempt_offset: int = 0
    template_id: str | None = None
    schedule_id: str | None = None

    def envelope(self) -> dict[str, Any]:
        """What the worker runs (stored msgpack-encoded in the job's hash, field ``spec``)."""
        return {
            "name": self.name,
            "data": self.data,
            "max_attempts": self.max_attempts,
            "backoff_ms": self.backoff_ms,
            "timeout_s": self.timeout_s,
            "attempt_offset": self.attempt_offset,
            "priority": self.priority,
        }

    def packed_envelope(self) -> bytes:
        packed: bytes = msgpack.packb(self.envelope(), use_bin_type=True, default=str)
        return packed

    def delayed(self, now: int) -> bool:
        return self.run_at_ms is not None and self.run_at_ms > now

    def score(self, now: int) -> int:
        """Its due time if delayed, else its rank in the ready set (higher priority first)."""
        if self.delayed(now):
            assert self.run_at_ms is not None
            return self.run_at_ms
        return now - self.priority * PRIORITY_WEIGHT_MS

    def added_event(self, now: int, by: str | None = None) -> Event:
        return Event(
            type=EventType.ADDED,
            queue=self.queue,
            job_id=self.job_id,
            attempt=self.attempt_offset + 1,
            name=self.name,
            ts=now,
            fields={
                "status": str(JobStatus.DELAYED if self.delayed(now) else JobStatus.WAITING),
                "priority": self.priority,
                "max_attempts": self.max_attempts,
                "data": self.data,
                "options": {
                    "backoff_ms": self.backoff_ms,
                    "timeout_s": self.timeout_s,
                    "template_id": self.template_id,
                    "schedule_id": self.schedule_id,
                },
                "run_at": self.run_at_ms,
                "by": by,
            },
        )
