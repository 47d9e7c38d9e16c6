"""Prometheus metrics of the gateway (served by the shared ``/metrics`` route)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTED_CLIENTS = Gauge("jobdeck_gateway_connected_clients", "Sockets connected to /jobs")
ENGINE_SESSIONS = Gauge(
    "jobdeck_gateway_engine_sessions", "engine.io sessions open (joined /jobs or not yet)"
)
COMPACTIONS = Counter(
    "jobdeck_gateway_compactions_total",
    "Session tables rebuilt and free memory returned after a peak of engine.io sessions",
)
SUBSCRIPTIONS = Gauge(
    "jobdeck_gateway_subscriptions", "Room subscriptions on this replica", ["kind"]
)
EVENTS_EMITTED = Counter(
    "jobdeck_gateway_events_emitted_total", "Socket.IO events sent to clients", ["event"]
)
PUBLISH_TO_EMIT = Histogram(
    "jobdeck_gateway_publish_to_emit_seconds",
    "Time from an event's publication (its ts) to its hand-off to client sockets",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STATS_AGE = Histogram(
    "jobdeck_gateway_stats_age_seconds",
    "Age of a stats snapshot (since its measuring began, its ts) when handed to client sockets",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DROPPED = Counter(
    "jobdeck_gateway_dropped_messages_total",
    "Messages not sent because a client's outgoing queue was full (slow or dead client)",
)
STREAM_ENTRIES = Counter("jobdeck_gateway_stream_entries_total", "Stream entries read", ["outcome"])
REFUSED = Counter("jobdeck_gateway_refused_connections_total", "Refused connects", ["reason"])
REPLAYED = Counter("jobdeck_gateway_replayed_events_total", "Events re-sent by resume")
ALERT_TRANSITIONS = Counter(
    "jobdeck_gateway_alert_transitions_total", "Alerts raised or cleared", ["kind", "state"]
)
EXPIRED_SESSIONS = Counter(
    "jobdeck_gateway_expired_sessions_total", "Sessions ended because their token expired"
)
