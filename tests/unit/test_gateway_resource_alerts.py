"""Resource alerts in the gateway: one per subject, raised once per crossing, cleared once."""

from __future__ import annotations

from jobdeck.usage import ResourceBreach
from jobdeck_gateway import alerts
from jobdeck_gateway.alerts import AlertKind, AlertState


def test_resource_alerts_are_raised_and_cleared_once_per_subject() -> None:
    hot = [
        ResourceBreach("process_rss", "api:api-1", 1500.0, 1024.0, True),
        ResourceBreach("process_rss", "worker:worker-7", 200.0, 1024.0, False),
        ResourceBreach("redis_memory", "redis", 91.5, 80.0, True),
    ]
    observations = alerts.observe_resources(hot)
    raised = alerts.transitions(observations, {})
    assert [(t.observation.kind, t.observation.subject, t.state) for t in raised] == [
        (AlertKind.PROCESS_RSS, "api:api-1", AlertState.RAISED),
        (AlertKind.REDIS_MEMORY, "redis", AlertState.RAISED),
    ]
    assert raised[0].message == "api:api-1 memory (RSS) 1500 MB, above 1024 MB"
    assert raised[1].message == "redis memory 91.5% of maxmemory, above 80% of maxmemory"
    state = {t.observation.key: "{}" for t in raised}
    assert alerts.transitions(observations, state) == []  # still over: nothing new
    gone = alerts.transitions(alerts.observe_resources(hot[2:]), state)  # api exited
    assert [(t.observation.subject, t.state) for t in gone] == [("api:api-1", AlertState.CLEARED)]
    assert gone[0].message == "api:api-1 memory (RSS) back to normal"
    assert alerts.alert_key(AlertKind.NO_WORKER, "a:b") == "no_worker:a:b"  # queue keys unchanged
