"""Tunables of the worker runtime, with the defaults an operator gets."""

from __future__ import annotations

from dataclasses import dataclass

from jobdeck_worker.policy import MAX_BACKOFF_MS


@dataclass(frozen=True)
class WorkerOptions:
    # Longest a job may run whatever it asks for.
    max_timeout_s: float = 3600.0
    # A run's lease, renewed from the housekeeping thread while the job runs: how long a job
    # of a worker killed with SIGKILL stays stuck before another worker runs it again.
    lease_s: float = 30.0
    # SIGTERM: how long running jobs may finish before they are handed back to the queue.
    grace_s: float = 20.0
    # Idle workers wake on enqueue; this slow poll only catches missed messages.
    fallback_poll_s: float = 1.0
    # Non-terminal events (started, progress, log) are written in batches this often.
    flush_delay_s: float = 0.005
    heartbeat_s: float = 5.0
    backoff_cap_ms: int = MAX_BACKOFF_MS
    backoff_jitter: float = 0.1
    # How long a finished job's id stays taken in Redis (and a replayed finish is answered).
    keep_result_s: float = 3600.0
    # The event loop answering later than this is logged as blocked (and counted).
    loop_lag_warn_s: float = 1.0
