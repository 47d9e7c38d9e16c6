"""Scheduler tuning, read once at the entry point from ``JOBDECK_SCHEDULER_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from jobdeck.settings import parse_int


@dataclass(frozen=True)
class SchedulerConfig:
    batch_size: int = 500  # schedules claimed per transaction
    # A slot this late (ms) still fires as on time: the scheduler was only behind (a busy
    # tick, a replica hand-over). Later than this, the catch-up policy decides.
    grace_ms: int = 10_000
    # Longest sleep without a change notification, so a lost LISTEN connection cannot
    # delay a slot for long.
    max_idle_ms: int = 1_000
    settle_interval_ms: int = 1_000  # how often finished jobs are folded into the schedules
    settle_batch: int = 1_000
    backoff_max_ms: int = 5_000  # longest wait after Postgres or Redis failed
    # A replica stuck inside a transaction (paused, partitioned) loses its claims after this.
    idle_in_transaction_ms: int = 5_000
    pg_pool_size: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerConfig:
        """``JOBDECK_SCHEDULER_BATCH_SIZE`` etc.; a malformed value fails loudly at start-up."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get(f"JOBDECK_SCHEDULER_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = parse_int(f"JOBDECK_SCHEDULER_{f.name.upper()}", raw, 1, 2**31 - 1)
        return replace(cls(), **values)
