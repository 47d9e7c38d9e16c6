"""The gateway's pure parts: event mapping, rooms, alert decisions, stats shaping."""

from __future__ import annotations

import pytest
from jobdeck.auth import Principal, Role
from jobdeck.events import Event, EventType
from jobdeck_gateway import alerts
from jobdeck_gateway.alerts import AlertKind, AlertState, Observation, QueueAlertInputs
from jobdeck_gateway.protocol import SocketEvent, outgoing, parse_event_id
from jobdeck_gateway.rooms import Client, Subscriptions
from jobdeck_gateway.stats import (
    QueueSnapshot,
    Snapshot,
    system_stats_payload,
)

from tests.support.gateway import validate

SECRET_DATA = {"password": "hunter2", "card": "4111"}

JOB_EVENTS: dict[EventType, dict[str, object]] = {
    EventType.ADDED: {
        "status": "delayed",
        "priority": 5,
        "max_attempts": 3,
        "data": SECRET_DATA,
        "options": {"backoff_ms": 1},
        "run_at": 99,
        "by": "alice",
    },
    EventType.STARTED: {"started_at": 1, "worker": "w1", "max_attempts": 3},
    EventType.PROGRESS: {"progress": 42.5, "message": "halfway"},
    EventType.LOG: {"seq": 1, "level": "info", "message": "hello"},
    EventType.COMPLETED: {
        "started_at": 1,
        "finished_at": 3,
        "duration_ms": 2,
        "result": SECRET_DATA,
    },
    EventType.FAILED: {
        "started_at": 1,
        "finished_at": 3,
        "duration_ms": 2,
        "error_type": "ValueError",
        "error_message": "bad",
        "traceback": "Traceback: secret locals",
    },
    EventType.RETRYING: {
        "started_at": 1,
        "finished_at": 3,
        "duration_ms": 2,
        "error_type": "E",
        "error_message": "m",
        "traceback": "tb",
        "retry_at": 10,
    },
    EventType.CANCELLED: {"started_at": None, "finished_at": 3, "by": "bob"},
}

EXPECTED_NAMES = {
    EventType.ADDED: [SocketEvent.JOB_ADDED, SocketEvent.JOB_UPDATE],
    EventType.STARTED: [SocketEvent.JOB_UPDATE],
    EventType.PROGRESS: [SocketEvent.JOB_PROGRESS],
    EventType.LOG: [SocketEvent.JOB_LOG],
    EventType.COMPLETED: [SocketEvent.JOB_COMPLETED, SocketEvent.JOB_UPDATE],
    EventType.FAILED: [SocketEvent.JOB_FAILED, SocketEvent.JOB_UPDATE],
    EventType.RETRYING: [SocketEvent.JOB_UPDATE],
    EventType.CANCELLED: [SocketEvent.JOB_UPDATE],
}


@pytest.mark.parametrize("etype", list(JOB_EVENTS))
def test_job_events_map_to_the_seed_names_and_match_the_schema(etype: EventType) -> None:
    event = Event(
        type=etype, queue="q", job_id="j1", attempt=1, name="task", ts=5, fields=JOB_EVENTS[etype]
    )
    out = outgoing(event, "5-0")
    assert [name for name, _ in out.messages] == EXPECTED_NAMES[etype]
    for name, payload in out.messages:
        validate(str(name), payload)
        assert payload["eventId"] == "5-0"
        text = repr(payload)
        assert (
            "hunter2" not in text
            and "secret locals" not in text
            and payload.get("traceback") != "tb"
        )
    if etype is EventType.LOG:
        assert out.rooms == ("job:j1",)
    else:
        assert set(out.rooms) == {"queue:q", "job:j1", "all"}


def test_queue_state_and_alert_events_match_the_schema() -> None:
    paused = outgoing(
        Event(type=EventType.QUEUE_PAUSED, queue="q", ts=1, fields={"by": "op"}), "1-0"
    )
    assert paused.messages[0][0] is SocketEvent.QUEUE_STATE_CHANGE
    validate("queueStateChange", paused.messages[0][1])
    assert paused.messages[0][1]["paused"] is True and paused.messages[0][1]["by"] == "op"
    fields = {
        "severity": "warning",
        "kind": "recorder_lag",
        "state": "raised",
        "value": 9,
        "threshold": 5,
        "message": "behind",
    }
    out = outgoing(Event(type=EventType.ALERT, queue="*", ts=1, fields=fields), "2-0")
    assert out.to_everyone and out.messages[0][1]["queue"] is None
    validate("alert", out.messages[0][1])


def test_structured_values_never_leak_through_scalar_fields() -> None:
    event = Event(
        type=EventType.CANCELLED,
        queue="q",
        job_id="j",
        attempt=1,
        fields={"started_at": None, "finished_at": 1, "by": {"token": "x"}},
    )
    payload = outgoing(event, "1-0").messages[0][1]
    assert payload["by"] is None


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("1-0", (1, 0)),
        ("17000-12", (17000, 12)),
        ("5", (5, 0)),
        ("x-1", None),
        ("1-", None),
        (None, None),
        (12, None),
        ("1" * 50, None),
    ],
)
def test_event_ids_parse_into_comparable_tuples(raw: object, parsed: object) -> None:
    assert parse_event_id(raw) == parsed


def _client(sid: str, queues: list[str] | None, role: Role = Role.VIEWER) -> Client:
    return Client(sid, Principal(sid, role, None if queues is None else frozenset(queues)))


def test_a_client_in_several_matching_rooms_is_a_recipient_once() -> None:
    subs = Subscriptions()
    admin, viewer = _client("a", None, Role.ADMIN), _client("v", ["q"])
    for c in (admin, viewer):
        subs.add(c)
    for room in ("queue:q", "job:j", "all"):
        subs.join(admin, room)
    subs.join(viewer, "queue:q")
    subs.join(viewer, "job:j")
    got = subs.recipients(("queue:q", "job:j", "all"), "q")
    assert got == {admin, viewer}


def test_job_and_all_rooms_still_respect_the_token_queues() -> None:
    subs = Subscriptions()
    narrow_admin = _client("n", ["other"], Role.ADMIN)
    subs.add(narrow_admin)
    subs.join(narrow_admin, "all")
    subs.join(narrow_admin, "job:j")
    assert subs.recipients(("queue:q", "job:j", "all"), "q") == set()
    assert subs.recipients(("all",), "other") == {narrow_admin}


def test_leaving_and_disconnecting_empty_the_index() -> None:
    subs = Subscriptions()
    c = _client("c", None)
    subs.add(c)
    assert subs.join(c, "queue:q") and not subs.join(c, "queue:q")
    subs.join(c, "job:j")
    assert subs.counts_by_kind()["queue"] == 1
    assert subs.leave(c, "queue:q") and not subs.leave(c, "queue:q")
    subs.remove("c")
    assert subs.rooms == {} and subs.clients == {}


def test_alerts_raise_once_and_clear_when_back_under() -> None:
    q = QueueAlertInputs("q", waiting=50, live_workers=1, backlog_threshold=10)
    first = alerts.transitions(alerts.observe_queue(q), raised={})
    assert [(t.observation.kind, t.state) for t in first] == [
        (AlertKind.WAITING_BACKLOG, AlertState.RAISED)
    ]
    raised = {t.observation.key: 1 for t in first}
    assert alerts.transitions(alerts.observe_queue(q), raised) == []
    calm = QueueAlertInputs("q", waiting=10, live_workers=1, backlog_threshold=10)
    cleared = alerts.transitions(alerts.observe_queue(calm), raised)
    assert [(t.observation.kind, t.state) for t in cleared] == [
        (AlertKind.WAITING_BACKLOG, AlertState.CLEARED)
    ]


def test_failure_rate_oldest_waiting_and_no_worker_rules() -> None:
    q = QueueAlertInputs(
        "q",
        waiting=3,
        live_workers=0,
        failed_in_window=3,
        finished_in_window=4,
        oldest_waiting_s=120,
        failure_rate_threshold=0.5,
        oldest_waiting_threshold_s=60,
    )
    kinds = {t.observation.kind for t in alerts.transitions(alerts.observe_queue(q), {})}
    assert kinds == {AlertKind.FAILURE_RATE, AlertKind.OLDEST_WAITING, AlertKind.NO_WORKER}
    idle = QueueAlertInputs("q", waiting=0, live_workers=0, failure_rate_threshold=0.5)
    assert alerts.transitions(alerts.observe_queue(idle), {}) == []


def test_recorder_lag_and_rules_switched_off_clear() -> None:
    lag = alerts.observe_recorder(500, 100)
    assert lag == [Observation(AlertKind.RECORDER_LAG, "*", 500, 100, True)]
    assert alerts.observe_recorder(None, 100) == []
    gone = alerts.transitions([], {"waiting_backlog:q": 1, "nonsense:q": 1})
    assert [(t.observation.key, t.state) for t in gone] == [
        ("waiting_backlog:q", AlertState.CLEARED)
    ]
    assert "recorder is 500 events behind" in alerts.describe(lag[0], AlertState.RAISED)


def test_system_stats_only_cover_the_queues_of_the_token() -> None:
    snap = Snapshot(
        ts=1,
        queues={
            "a": QueueSnapshot(waiting=2, failed=1),
            "b": QueueSnapshot(waiting=5, paused=True),
        },
        workers=[{"instance": "w", "queues": ["b"], "concurrency": 4, "active": 1}],
        recorder_lag=0,
    )
    everything = system_stats_payload(snap, None)
    assert everything["totals"]["waiting"] == 7 and everything["workers"]["live"] == 1
    only_a = system_stats_payload(snap, frozenset({"a"}))
    assert only_a["totals"]["waiting"] == 2 and only_a["workers"]["live"] == 0
    assert only_a["queues"] == 1 and only_a["pausedQueues"] == 0
    validate("systemStats", everything)


def test_system_stats_for_a_scoped_client_count_only_its_queues_share_of_workers() -> None:
    shared = {
        "instance": "w1",
        "queues": ["mine", "theirs"],
        "concurrency": 14,
        "active": 9,
        "queue_active": {"mine": 1, "theirs": 8},
        "queue_concurrency": {"mine": 4, "theirs": 10},
    }
    theirs_only = {**shared, "instance": "w2", "queues": ["theirs"], "active": 5}
    snap = Snapshot(ts=1, workers=[shared, theirs_only])
    scoped = system_stats_payload(snap, frozenset({"mine"}))["workers"]
    assert scoped == {"live": 1, "busy": 1, "concurrency": 4, "activeJobs": 1}
    everything = system_stats_payload(snap, None)["workers"]
    assert everything["activeJobs"] == 14 and everything["live"] == 2


class _FakeSocket:
    """Stands in for an engine.io socket: only its outgoing queue matters to the fan-out."""

    def __init__(self) -> None:
        import asyncio

        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.closed = False

    def drain(self) -> list[str]:
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait().data)  # type: ignore[attr-defined]
        return items


async def test_a_slow_client_loses_messages_alone_and_is_told_what_it_missed() -> None:
    import json

    import socketio
    from jobdeck_gateway.fanout import Fanout

    subs = Subscriptions()
    fast, slow = _client("fast", ["q"]), _client("slow", ["q"])
    for c in (fast, slow):
        c.socket = _FakeSocket()
        subs.add(c)
        subs.join(c, "queue:q")
    fanout = Fanout(socketio.AsyncServer(async_mode="aiohttp"), subs, None, queue_limit=3)  # type: ignore[arg-type]
    got_fast: list[str] = []
    for n in range(10):
        event = Event(
            type=EventType.STARTED,
            queue="q",
            job_id=f"j{n}",
            attempt=1,
            fields={"started_at": 1, "worker": "w", "max_attempts": 1},
        )
        fanout.dispatch(f"{n + 1}-0", event)
        got_fast += fast.socket.drain()
    assert len(got_fast) == 10
    assert slow.socket.queue.qsize() == 3 and slow.dropped == 7
    slow.socket.drain()
    fanout.dispatch(
        "11-0",
        Event(
            type=EventType.STARTED,
            queue="q",
            job_id="j10",
            attempt=1,
            fields={"started_at": 1, "worker": "w", "max_attempts": 1},
        ),
    )
    notice, update = slow.socket.drain()
    name, payload = json.loads(notice.split(",", 1)[1])
    assert name == "eventsDropped"
    assert payload == {"count": 7, "fromEventId": "4-0", "toEventId": "10-0"}
    validate("eventsDropped", payload)
    assert '"j10"' in update


class _FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.backlog = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def write(self, data: bytes) -> None:
        self.writes.append(data)


async def test_websocket_clients_get_one_write_per_flush_and_slow_ones_are_dropped() -> None:
    import asyncio

    import socketio
    from jobdeck_gateway.fanout import Fanout

    subs = Subscriptions()
    fast, slow = _client("fast", ["q"]), _client("slow", ["q"])
    for c in (fast, slow):
        c.socket = _FakeSocket()
        c.socket.upgraded, c.socket.upgrading = True, False
        c.socket.jobdeck_transport = _FakeTransport()
        subs.add(c)
        subs.join(c, "queue:q")
    fanout = Fanout(socketio.AsyncServer(async_mode="aiohttp"), subs, None, 10, buffer_limit=10_000)  # type: ignore[arg-type]

    def started(n: int) -> Event:
        return Event(
            type=EventType.STARTED,
            queue="q",
            job_id=f"j{n}",
            attempt=1,
            fields={"started_at": 1, "worker": "w", "max_attempts": 1},
        )

    for n in range(5):
        fanout.dispatch(f"{n + 1}-0", started(n))
    await asyncio.sleep(0)  # the flush runs once, after the batch
    writes = fast.socket.jobdeck_transport.writes
    assert len(writes) == 1 and writes[0].count(b'"jobUpdate"') == 5
    assert writes[0][:1] == b"\x81"  # a websocket text frame, unmasked
    slow.socket.jobdeck_transport.backlog = 20_000  # its socket stopped reading
    for n in range(5, 8):
        fanout.dispatch(f"{n + 1}-0", started(n))
    await asyncio.sleep(0)
    assert slow.dropped == 3 and len(fast.socket.jobdeck_transport.writes) == 2
    slow.socket.jobdeck_transport.backlog = 0
    fanout.dispatch("9-0", started(8))
    await asyncio.sleep(0)
    last = slow.socket.jobdeck_transport.writes[-1]
    assert b'"eventsDropped"' in last and b'"count":3' in last and b'"j8"' in last


def test_a_resume_id_may_reach_but_not_pass_the_stream_end() -> None:
    from jobdeck_gateway.protocol import beyond_stream_end

    end = (1764000000000, 3)
    for fine in ("1764000000000-3", "1764000000000-2", "1763999999999-9", "0-0", "1764000000000"):
        assert beyond_stream_end(fine, end) is None, fine
    for ahead in ("1764000000000-4", "1764000000001-0", "99999999999999-0"):
        reason = beyond_stream_end(ahead, end)
        assert reason is not None and "beyond" in reason and "1764000000000-3" in reason
    assert beyond_stream_end("1-0", (0, 0)) is not None  # an empty stream: nothing to resume


def test_principals_carry_the_token_expiry_for_long_sessions() -> None:
    from jobdeck.auth import InvalidToken, check_claims

    claims: dict[str, object] = {"sub": "u", "roles": ["viewer"], "queues": ["a"]}
    assert check_claims({**claims, "exp": 1764000000}, 1763999000).expires_at == 1764000000.0
    for bad in ({}, {"exp": True}, {"exp": "1764000000"}):
        with pytest.raises(InvalidToken, match="exp"):
            check_claims({**claims, **bad}, 1763999000)
    assert Principal("u", Role.VIEWER, None).expires_at is None  # built by hand: no expiry


def test_removed_jobs_reach_their_queue_their_own_rooms_and_all() -> None:
    event = Event(
        type=EventType.REMOVED,
        queue="mail",
        ts=1_700_000_000_000,
        fields={"job_ids": ["a", "b"], "by": "olga", "reason": "cleaned"},
    )
    out = outgoing(event, "1700000000000-0")
    ((name, payload),) = out.messages
    assert name is SocketEvent.JOB_REMOVED
    assert payload == {
        "eventId": "1700000000000-0",
        "ts": 1_700_000_000_000,
        "queue": "mail",
        "jobIds": ["a", "b"],
        "by": "olga",
        "reason": "cleaned",
    }
    validate("jobRemoved", payload)
    assert set(out.rooms) == {"queue:mail", "all", "job:a", "job:b"}
