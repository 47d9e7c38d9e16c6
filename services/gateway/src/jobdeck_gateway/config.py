"""Gateway-only settings, read from the environment once at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from jobdeck.settings import ConfigError, parse_float, parse_int
from jobdeck.usage import ResourceThresholds


@dataclass(frozen=True)
class GatewayConfig:
    """Tunables of the gateway (``JOBDECK_GATEWAY_<FIELD>``); a bad value stops the start.

    ``client_queue_limit`` (packets, polling clients) and ``client_buffer_bytes``
    (unsent bytes, websocket clients) bound what waits for one client: past them the
    client is slow or dead and further messages are dropped (and counted) instead of
    growing memory or holding up the stream reader. ``flush_interval_s`` > 0 gathers a
    client's frames for that long before writing them (fewer syscalls under heavy
    fan-out, at that much added latency); 0 writes at the end of each loop iteration.
    ``stats_window_s``: ``queueStats``/``systemStats`` count completed and failed jobs
    over this recent window (and say so in ``windowS``), never over the whole table.

    ``cors_origins``: comma-separated origins allowed to connect from a browser; empty
    (the default) allows the same origin only (the ingress serves the dashboard, the API
    and the gateway on one origin); ``*`` allows any and should not be used with tokens
    kept in a browser.

    Unauthenticated load: an engine.io session must join ``/jobs`` within
    ``join_timeout_s`` or it is closed (engine.io still holds a closed session until its
    next ping is due, ``ping_interval_s``; a client that leaves a ping unanswered for
    ``ping_timeout_s`` is gone, and one sweep over the sessions, which also gives back
    the memory of a flood, see ``engine``, takes that long); one client address may hold at most
    ``max_connections_per_address`` sessions and open ``handshake_burst`` more, refilled
    at ``handshakes_per_s`` (``trusted_proxies``: peers whose ``X-Forwarded-For`` names
    the client, e.g. the ingress); all addresses together may hold at most
    ``max_unjoined_sessions`` sessions that have not joined ``/jobs`` (a flood from many
    addresses costs at most that many sessions' memory). Per authenticated caller:
    ``max_connections_per_token`` sessions per ``sub``; ``subscribe_burst`` room changes refilled at
    ``subscribes_per_s``; ``job_lookup_burst`` ``subscribeJob`` database lookups refilled
    at ``job_lookups_per_s``; over a limit the message gets a ``rate_limited`` error ack.
    """

    stats_interval_s: float = 5.0
    stats_window_s: int = 3600
    client_queue_limit: int = 2000
    client_buffer_bytes: int = 1 << 20
    flush_interval_s: float = 0.01
    recorder_lag_alert: int = 10_000
    cors_origins: str = ""
    read_batch: int = 1000
    join_timeout_s: float = 10.0
    ping_interval_s: float = 25.0
    ping_timeout_s: float = 20.0
    max_connections_per_address: int = 500
    max_unjoined_sessions: int = 5000
    handshakes_per_s: float = 20.0
    handshake_burst: int = 200
    trusted_proxies: str = "127.0.0.1,::1"
    max_connections_per_token: int = 50
    subscribes_per_s: float = 20.0
    subscribe_burst: int = 200
    job_lookups_per_s: float = 10.0
    job_lookup_burst: int = 100
    # Resource alert thresholds (``JOBDECK_ALERT_*``, shared with the analytics API).
    resources: ResourceThresholds = field(default_factory=ResourceThresholds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"JOBDECK_GATEWAY_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or f.name == "resources":
                continue
            if f.type == "float":
                low, high = FLOAT_BOUNDS.get(f.name, (0.001, 86_400.0))
                values[f.name] = parse_float(name, raw, low, high)
            elif f.type == "int":
                low_i, high_i = INT_BOUNDS.get(f.name, (1, 10**9))
                values[f.name] = parse_int(name, raw, low_i, high_i)
            else:
                values[f.name] = _origins(name, raw) if f.name == "cors_origins" else raw.strip()
        values["resources"] = ResourceThresholds.from_env(env)
        return replace(cls(), **values)  # type: ignore[arg-type]

    @property
    def origins(self) -> frozenset[str]:
        """The listed origins (``*`` means any)."""
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    @property
    def proxies(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())


FLOAT_BOUNDS = {"flush_interval_s": (0.0, 1.0), "stats_interval_s": (0.05, 3600.0)}
INT_BOUNDS = {"stats_window_s": (60, 30 * 86_400), "client_buffer_bytes": (4096, 1 << 30)}


def _origins(name: str, raw: str) -> str:
    for origin in (o.strip() for o in raw.split(",")):
        if origin and origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(
                f"{name}={raw!r}: accepts comma-separated origins such as "
                "https://jobs.example.com, or * (any), or empty (same origin only)"
            )
    return raw.strip()
