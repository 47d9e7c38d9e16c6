"""Recorder tuning, read once at the entry point from ``JOBDECK_RECORDER_*`` variables.

These knobs only matter to the recorder, so they live here rather than in the shared
``Settings``; tests shorten the claim idle time to about a second.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from jobdeck.settings import ConfigError, parse_int

GROUP = "recorder"
POSITIVE = frozenset(
    {
        "batch_size",
        "pg_pool_size",
        "janitor_batch",
        "block_ms",
        "lag_ttl_s",
        "retention_batch",
        "retention_duty_pct",
    }
)
MAX_INT = 2**31 - 1


@dataclass(frozen=True)
class RecorderConfig:
    group: str = GROUP
    batch_size: int = 5_000  # entries per XREADGROUP and per Postgres transaction
    block_ms: int = 1_000  # how long one read waits for new entries
    claim_idle_ms: int = 30_000  # entries pending this long on another consumer are taken over
    claim_interval_ms: int = 5_000  # how often to look for such entries
    backoff_min_ms: int = 200  # first wait after Postgres or Redis fails
    backoff_max_ms: int = 5_000
    lag_interval_ms: int = 1_000  # how often the lag gauges and the Redis lag key are refreshed
    lag_ttl_s: int = 15  # the Redis lag key disappears when no recorder refreshes it
    consumer_expiry_ms: int = 3_600_000  # idle consumers with nothing pending are removed
    pg_pool_size: int = 4
    # The janitor (one replica at a time) fails jobs that vanished from Redis: every
    # ``janitor_interval_ms`` (0: never) it checks up to ``janitor_batch`` unfinished rows
    # that no event has touched for ``lost_after_ms``, and fails those still missing
    # ``lost_confirm_ms`` later (longer than a worker's lease renewal period, 5-10 s).
    janitor_interval_ms: int = 30_000
    lost_after_ms: int = 300_000
    lost_confirm_ms: int = 15_000
    janitor_batch: int = 1_000
    # Retention (see pruner.py): every ``retention_interval_ms`` (0: never) one replica
    # deletes finished jobs and their logs past each queue's retention, in batches of
    # ``retention_batch`` rows with ``retention_pause_ms`` between them, at most
    # ``retention_max_batches`` a pass. A queue config's keep_*_days override the defaults
    # below; 0 keeps forever.
    retention_interval_ms: int = 60_000
    retention_batch: int = 1_000
    retention_pause_ms: int = 20
    # After a batch that took t, the pruner rests at least t * (100 - duty) / duty: it works
    # at most this share of the time, however slow a loaded database makes its batches.
    retention_duty_pct: int = 20
    retention_max_batches: int = 500
    retention_completed_days: int = 30
    retention_failed_days: int = 90
    retention_logs_days: int = 30
    # Analytics rollups, kept in each batch's transaction (0 turns them off: the bench's
    # comparison; the analytics endpoints then miss what was recorded meanwhile).
    rollups: int = 1
    # How long each rollup level is kept (days), and how often old rows are deleted
    # (every replica prunes; a delete is idempotent). Failed-attempt rows go with the hours.
    rollup_minute_days: int = 7
    rollup_hour_days: int = 90
    rollup_day_days: int = 730
    rollup_prune_interval_ms: int = 3_600_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RecorderConfig:
        """``JOBDECK_RECORDER_BATCH_SIZE`` etc.; a bad value raises ConfigError naming it."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"JOBDECK_RECORDER_{f.name.upper()}")
            if raw is None:
                continue
            name = f"JOBDECK_RECORDER_{f.name.upper()}"
            if f.type == "int":
                low = 1 if f.name in POSITIVE else 0
                high = 100 if f.name == "retention_duty_pct" else MAX_INT
                values[f.name] = parse_int(name, raw, low, high)
            elif raw.strip():
                values[f.name] = raw.strip()
            else:
                raise ConfigError(f"{name}: accepts a non-empty name")
        return replace(cls(), **values)  # type: ignore[arg-type]
