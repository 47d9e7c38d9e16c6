"""Gateway-only settings, read from the environment once at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from jobdeck.usage import ResourceThresholds


@dataclass(frozen=True)
class GatewayConfig:
    """Tunables of the gateway (``JOBDECK_GATEWAY_*``).

    ``client_queue_limit`` (packets, polling clients) and ``client_buffer_bytes``
    (unsent bytes, websocket clients) bound what waits for one client: past them the
    client is slow or dead and further messages are dropped (and counted) instead of
    growing memory or holding up the stream reader. ``flush_interval_s`` > 0 gathers a
    client's frames for that long before writing them (fewer syscalls under heavy
    fan-out, at that much added latency); 0 writes at the end of each loop iteration.
    ``stats_window_s``: ``queueStats``/``systemStats`` count completed and failed jobs
    over this recent window (and say so in ``windowS``), never over the whole table.
    """

    stats_interval_s: float = 5.0
    stats_window_s: int = 3600
    client_queue_limit: int = 2000
    client_buffer_bytes: int = 1 << 20
    flush_interval_s: float = 0.01
    recorder_lag_alert: int = 10_000
    cors_origins: str = "*"
    read_batch: int = 1000
    # Resource alert thresholds (``JOBDECK_ALERT_*``, shared with the analytics API).
    resources: ResourceThresholds = field(default_factory=ResourceThresholds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            stats_interval_s=float(env.get("JOBDECK_GATEWAY_STATS_INTERVAL_S", d.stats_interval_s)),
            stats_window_s=int(env.get("JOBDECK_GATEWAY_STATS_WINDOW_S", d.stats_window_s)),
            client_queue_limit=int(
                env.get("JOBDECK_GATEWAY_CLIENT_QUEUE_LIMIT", d.client_queue_limit)
            ),
            client_buffer_bytes=int(
                env.get("JOBDECK_GATEWAY_CLIENT_BUFFER_BYTES", d.client_buffer_bytes)
            ),
            flush_interval_s=float(env.get("JOBDECK_GATEWAY_FLUSH_INTERVAL_S", d.flush_interval_s)),
            recorder_lag_alert=int(
                env.get("JOBDECK_GATEWAY_RECORDER_LAG_ALERT", d.recorder_lag_alert)
            ),
            cors_origins=env.get("JOBDECK_GATEWAY_CORS_ORIGINS", d.cors_origins),
            read_batch=int(env.get("JOBDECK_GATEWAY_READ_BATCH", d.read_batch)),
            resources=ResourceThresholds.from_env(env),
        )
