"""The gateway with real python-socketio clients, real Redis and Postgres (in-process app)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import socketio
from jobdeck.auth import mint_token
from jobdeck.events import Event, EventType
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.settings import Settings
from jobdeck.streams import EventStream
from jobdeck_gateway.app import SUBSCRIPTIONS
from jobdeck_gateway.config import GatewayConfig
from redis.asyncio import Redis

from tests.support.gateway import (
    NS,
    Gateway,
    Listener,
    running_gateway,
    validate,
    validate_ack,
)
from tests.support.processes import wait_for

# PyJWT warns (an error under pytest) about HMAC keys shorter than 32 bytes.
SECRET = "gateway-tests-secret-0123456789abcdef"


@pytest.fixture
def gw_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, jwt_secret=SECRET, instance="gw-test")


@pytest.fixture
async def gateway(gw_settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(gw_settings) as gw:
        yield gw


@pytest.fixture
def q() -> str:
    """A queue name of this test's own: other suites may share the Redis database."""
    return f"q-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def listeners() -> AsyncIterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        await listener.sio.disconnect()


def token(
    role: str = "admin", queues: list[str] | str = "*", ttl: int = 600, sub: str = "u"
) -> str:
    return mint_token(SECRET, sub, [role], queues, ttl_s=ttl)


async def connect(
    gw: Gateway, made: list[Listener], auth: dict[str, Any] | None, **kw: Any
) -> Listener:
    listener = Listener()
    made.append(listener)
    await listener.connect(gw.url, auth, **kw)
    await listener.wait("connected")
    return listener


def started(queue: str, job_id: str, n: int = 0) -> Event:
    return Event(
        type=EventType.STARTED,
        queue=queue,
        job_id=job_id,
        attempt=1,
        name=f"task-{n}",
        fields={"started_at": n, "worker": "w1", "max_attempts": 3},
    )


async def test_connect_greets_with_who_the_caller_is(
    gateway: Gateway, listeners: list[Listener]
) -> None:
    viewer = await connect(gateway, listeners, {"token": token("viewer", ["b", "a"], sub="vera")})
    hello = viewer.named("connected")[0]
    validate("connected", hello)
    assert hello["sub"] == "vera" and hello["role"] == "viewer" and hello["queues"] == ["a", "b"]
    assert hello["canSubscribeAll"] is False and hello["resumePending"] is False


async def test_the_authorization_header_is_accepted(
    gateway: Gateway, listeners: list[Listener]
) -> None:
    client = await connect(gateway, listeners, None, headers={"Authorization": f"Bearer {token()}"})
    assert client.named("connected")[0]["role"] == "admin"


@pytest.mark.parametrize(
    ("auth", "reason", "words"),
    [
        (None, "missing_token", "missing"),
        ({"token": ""}, "missing_token", "missing"),
        (
            {"token": mint_token(SECRET, "u", ["admin"], "*", ttl_s=-3600)},
            "token_expired",
            "expired",
        ),
        ({"token": mint_token("x" * 40, "u", ["admin"], "*")}, "bad_signature", "signature"),
        ({"token": "not.a.jwt"}, "invalid_token", "invalid"),
        ({"token": "@@"}, "invalid_token", "invalid"),
    ],
)
async def test_bad_tokens_are_refused_with_a_clear_reason(
    gateway: Gateway, auth: dict[str, Any] | None, reason: str, words: str
) -> None:
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.connect(gateway.url, auth)
    assert listener.connect_error["data"]["reason"] == reason
    assert words in listener.connect_error["message"]


async def test_a_malformed_last_event_id_is_refused(gateway: Gateway) -> None:
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.connect(gateway.url, {"token": token(), "lastEventId": "yesterday"})
    assert listener.connect_error["data"]["reason"] == "bad_last_event_id"


async def test_every_message_is_acknowledged(
    gateway: Gateway, listeners: list[Listener], pg: asyncpg.Pool
) -> None:
    await pg.execute(
        "INSERT INTO jobs (id, queue, name, status, created_at) VALUES"
        " ('j-a', 'a', 't', 'waiting', now()), ('j-x', 'secret', 't', 'waiting', now())"
    )
    viewer = await connect(gateway, listeners, {"token": token("viewer", ["a"])})
    admin = await connect(gateway, listeners, {"token": token("admin")})
    cases: list[tuple[Listener, str, Any, bool, str | None]] = [
        (viewer, "subscribeQueue", {"queue": "a"}, True, None),
        (viewer, "subscribeQueue", {"queue": "a"}, True, None),
        (viewer, "subscribeQueue", {"queue": "secret"}, False, "forbidden"),
        (viewer, "subscribeQueue", {}, False, "bad_request"),
        (viewer, "subscribeQueue", {"queue": 7}, False, "bad_request"),
        (viewer, "subscribeQueue", "a", False, "bad_request"),
        (viewer, "unsubscribeQueue", {"queue": "a"}, True, None),
        (viewer, "subscribeStats", {"queue": "a"}, True, None),
        (viewer, "subscribeStats", {"queue": "secret"}, False, "forbidden"),
        (viewer, "subscribeStats", {}, False, "bad_request"),
        (viewer, "unsubscribeStats", {"queue": "a"}, True, None),
        (viewer, "subscribeJob", {"jobId": "j-a"}, True, None),
        (viewer, "subscribeJob", {"jobId": "j-x"}, False, "not_found"),  # as an unknown job
        (viewer, "subscribeJob", {"jobId": "unknown"}, False, "not_found"),
        (viewer, "subscribeJob", {"jobId": "unknown", "queue": "a"}, True, None),
        (viewer, "subscribeJob", {"jobId": "unknown", "queue": "secret"}, False, "forbidden"),
        (admin, "subscribeJob", {"jobId": "not-yet-recorded"}, True, None),
        (viewer, "unsubscribeJob", {"jobId": "j-a"}, True, None),
        (viewer, "subscribeAll", None, False, "forbidden"),
        (admin, "subscribeAll", None, True, None),
        (admin, "unsubscribeAll", None, True, None),
        (viewer, "resume", None, False, "bad_request"),
        (viewer, "resume", {"lastEventId": "nope"}, False, "bad_request"),
        (viewer, "doSomethingElse", {"x": 1}, False, "unknown"),
    ]
    for client, message, data, ok, code in cases:
        ack = await client.call(message, data)
        assert ack["ok"] is ok, (message, data, ack)
        validate_ack(
            message
            if message
            in (
                "subscribeQueue",
                "unsubscribeQueue",
                "subscribeStats",
                "unsubscribeStats",
                "subscribeJob",
                "unsubscribeJob",
                "subscribeAll",
                "unsubscribeAll",
                "resume",
            )
            else "unknown",
            ack,
        )
        if code is not None:
            assert ack["code"] == code and ack["error"], (message, ack)


async def test_every_event_type_reaches_the_rooms_allowed_to_see_it(
    q: str, gateway: Gateway, listeners: list[Listener], redis: Redis, gw_settings: Settings
) -> None:
    watcher = await connect(gateway, listeners, {"token": token("admin")})
    queue_only = await connect(gateway, listeners, {"token": token("viewer", [q])})
    outsider = await connect(gateway, listeners, {"token": token("viewer", ["other"])})
    spec = JobSpec(queue=q, name="price-file-parser", data={"password": "hunter2"})
    assert (await watcher.call("subscribeJob", {"jobId": spec.job_id}))["ok"]
    assert (await watcher.call("subscribeAll"))["ok"]
    assert (await queue_only.call("subscribeQueue", {"queue": q}))["ok"]
    assert (await outsider.call("subscribeQueue", {"queue": "other"}))["ok"]

    queues = QueueClient(redis, gw_settings.stream_maxlen)
    stream = EventStream(redis, gw_settings.stream_maxlen)
    await queues.enqueue(spec, by="alice")
    job = {"queue": q, "job_id": spec.job_id, "attempt": 1, "name": spec.name}
    await stream.publish_many(
        [
            Event(
                type=EventType.STARTED,
                **job,
                fields={"started_at": 1, "worker": "w", "max_attempts": 3},
            ),
            Event(type=EventType.PROGRESS, **job, fields={"progress": 50, "message": "half"}),
            Event(type=EventType.LOG, **job, fields={"seq": 1, "level": "info", "message": "line"}),
            Event(
                type=EventType.RETRYING,
                **job,
                fields={
                    "started_at": 1,
                    "finished_at": 2,
                    "duration_ms": 1,
                    "error_type": "E",
                    "error_message": "m",
                    "traceback": "TB-SECRET",
                    "retry_at": 9,
                },
            ),
            Event(
                type=EventType.COMPLETED,
                **job,
                fields={
                    "started_at": 1,
                    "finished_at": 2,
                    "duration_ms": 1,
                    "result": {"token": "hunter2"},
                },
            ),
            Event(
                type=EventType.FAILED,
                **{**job, "attempt": 2},
                fields={
                    "started_at": 1,
                    "finished_at": 2,
                    "duration_ms": 1,
                    "error_type": "E",
                    "error_message": "boom",
                    "traceback": "TB-SECRET",
                },
            ),
            Event(
                type=EventType.CANCELLED,
                **{**job, "attempt": 2},
                fields={"started_at": None, "finished_at": 3, "by": "bob"},
            ),
        ]
    )
    await queues.pause(q, by="operator-olga")
    await queues.resume(q, by="operator-olga")
    await watcher.wait("queueStateChange", lambda d: d["state"] == "resumed")
    await queue_only.wait("queueStateChange", lambda d: d["state"] == "resumed")

    expected = {
        "jobAdded",
        "jobUpdate",
        "jobProgress",
        "jobLog",
        "jobCompleted",
        "jobFailed",
        "queueStateChange",
    }
    got = {e for e, _ in watcher.events}
    assert expected <= got
    statuses = [d["status"] for d in watcher.named("jobUpdate")]
    assert statuses == ["waiting", "active", "delayed", "completed", "failed", "cancelled"]
    for name, payload in watcher.events + queue_only.events:
        if name in expected:
            validate(name, payload)
        assert "hunter2" not in repr(payload) and "TB-SECRET" not in repr(payload)
    assert queue_only.named("jobLog") == []  # logs go to job rooms only
    assert len(queue_only.named("jobUpdate")) == 6
    assert watcher.named("queueStateChange")[0]["by"] == "operator-olga"
    assert all(
        e in ("connected", "systemStats") or (e == "queueStats" and d["queue"] == "other")
        for e, d in outsider.events
    )


async def test_a_client_in_several_matching_rooms_gets_each_event_once(
    q: str, gateway: Gateway, listeners: list[Listener], redis: Redis
) -> None:
    client = await connect(gateway, listeners, {"token": token("admin")})
    for message, data in (
        ("subscribeQueue", {"queue": q}),
        ("subscribeJob", {"jobId": "j1"}),
        ("subscribeAll", None),
    ):
        assert (await client.call(message, data))["ok"]
    stream = EventStream(redis, 1000)
    await stream.publish(started(q, "j1", 1))
    await stream.publish(started(q, "j2", 2))
    await client.wait("jobUpdate", lambda d: d["jobId"] == "j2")
    assert [d["jobId"] for d in client.named("jobUpdate")] == ["j1", "j2"]


async def test_resume_after_reconnect_has_no_gap_and_no_duplicate(
    q: str, gateway: Gateway, listeners: list[Listener], redis: Redis
) -> None:
    stream = EventStream(redis, 100_000)
    first = await connect(gateway, listeners, {"token": token("viewer", [q])})
    await first.call("subscribeQueue", {"queue": q})
    for n in range(1, 4):
        await stream.publish(started(q, f"j{n}", n))
    await first.wait("jobUpdate", lambda d: d["jobId"] == "j3")
    last_seen = first.named("jobUpdate")[-1]["eventId"]
    await first.sio.disconnect()

    for n in range(4, 7):  # missed while away
        await stream.publish(started(q, f"j{n}", n))
        await stream.publish(started("elsewhere", f"x{n}", n))
    second = await connect(
        gateway, listeners, {"token": token("viewer", [q]), "lastEventId": last_seen}
    )
    assert second.named("connected")[0]["resumePending"] is True
    await second.call("subscribeQueue", {"queue": q})
    await stream.publish(started(q, "j7", 7))  # while held, before resume
    ack = await second.call("resume")
    validate_ack("resume", ack)
    assert ack["ok"] and ack["truncated"] is False and ack["replayed"] >= 3
    await stream.publish(started(q, "j8", 8))  # live again
    await second.wait("jobUpdate", lambda d: d["jobId"] == "j8")
    assert [d["jobId"] for d in second.named("jobUpdate")] == [f"j{n}" for n in range(4, 9)]
    ids = [d["eventId"] for d in second.named("jobUpdate")]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


async def test_stats_and_alerts_reach_clients_once_per_crossing(
    q: str, gw_settings: Settings, listeners: list[Listener], redis: Redis, pg: asyncpg.Pool
) -> None:
    await pg.execute(
        "INSERT INTO job_queue_configs (queue, alert_waiting_backlog) VALUES ($1, 1)", q
    )
    queues = QueueClient(redis, gw_settings.stream_maxlen)
    config = GatewayConfig(stats_interval_s=0.1)
    async with (
        running_gateway(gw_settings, config) as one,
        running_gateway(gw_settings, config) as two,
    ):
        a = await connect(one, listeners, {"token": token("viewer", [q])})
        b = await connect(two, listeners, {"token": token("admin")})
        await a.call("subscribeQueue", {"queue": q})
        await b.call("subscribeAll")
        specs = [JobSpec(queue=q, name="t") for _ in range(3)]
        for spec in specs:
            await queues.enqueue(spec)
        stats = await a.wait("queueStats", lambda d: d["queue"] == q and d["waiting"] == 3)
        validate("queueStats", stats)
        assert stats["workers"] == 0 and stats["paused"] is False
        system = await a.wait("systemStats", lambda d: d["totals"]["waiting"] == 3)
        validate("systemStats", system)
        assert system["queues"] == 1  # the viewer's token covers one queue

        def mine(kind: str, state: str = "raised") -> Any:
            return lambda d: d["queue"] == q and d["kind"] == kind and d["state"] == state

        for client in (a, b):
            await client.wait("alert", mine("waiting_backlog"))
            await client.wait("alert", mine("no_worker"))
        late = await connect(one, listeners, {"token": token("viewer", [q])})
        active = late.named("connected")[0]["activeAlerts"]
        assert {x["kind"] for x in active} == {"waiting_backlog", "no_worker"}
        validate("connected", late.named("connected")[0])
        ticks = len(a.named("queueStats"))
        await a.wait("queueStats", lambda d: len(a.named("queueStats")) >= ticks + 5)
        for spec in specs:
            await queues.cancel(spec.job_id, q, spec.name, 1)
        for client in (a, b):
            await client.wait("alert", mine("waiting_backlog", "cleared"))
            await client.wait("alert", mine("no_worker", "cleared"))
        for client in (a, b):
            transitions = [
                (d["kind"], d["state"]) for d in client.named("alert") if d["queue"] == q
            ]
            assert sorted(transitions) == sorted(
                [
                    ("waiting_backlog", "raised"),
                    ("no_worker", "raised"),
                    ("waiting_backlog", "cleared"),
                    ("no_worker", "cleared"),
                ]
            )
            for payload in client.named("alert"):
                validate("alert", payload)
    # Each client got each transition exactly once although two replicas were evaluating:
    # a second alert event in the stream would have reached both clients twice.


async def test_two_replicas_both_deliver_every_event(
    q: str, gw_settings: Settings, listeners: list[Listener], redis: Redis
) -> None:
    async with running_gateway(gw_settings) as one, running_gateway(gw_settings) as two:
        a = await connect(one, listeners, {"token": token("viewer", [q])})
        b = await connect(two, listeners, {"token": token("viewer", [q])})
        for client in (a, b):
            await client.call("subscribeQueue", {"queue": q})
        stream = EventStream(redis, 1000)
        for n in range(20):
            await stream.publish(started(q, f"j{n}", n))
        for client in (a, b):
            await client.wait("jobUpdate", lambda d: d["jobId"] == "j19")
            assert [d["jobId"] for d in client.named("jobUpdate")] == [f"j{n}" for n in range(20)]
        assert a.named("connected")[0]["instance"] == b.named("connected")[0]["instance"]


async def test_metrics_count_clients_subscriptions_and_events(
    q: str, gateway: Gateway, listeners: list[Listener], redis: Redis
) -> None:
    import aiohttp

    client = await connect(gateway, listeners, {"token": token("admin")})
    await client.call("subscribeQueue", {"queue": q})
    await EventStream(redis, 1000).publish(started(q, "j1"))
    await client.wait("jobUpdate")

    async def scraped() -> str:
        async with aiohttp.ClientSession() as s, s.get(gateway.url + "/metrics") as resp:
            return await resp.text()

    text = await scraped()
    for name in (
        "jobdeck_gateway_connected_clients",
        'jobdeck_gateway_subscriptions{kind="queue"}',
        'jobdeck_gateway_events_emitted_total{event="jobUpdate"}',
        "jobdeck_gateway_publish_to_emit_seconds_bucket",
        "jobdeck_gateway_dropped_messages_total",
    ):
        assert name in text
    await wait_for(lambda: _true(), timeout=1)


async def _true() -> bool:
    return True


async def test_recorder_lag_reaches_system_stats_and_alerts_everyone(
    gw_settings: Settings, listeners: list[Listener], redis: Redis
) -> None:
    from jobdeck.lag import RECORDER_LAG_KEY, RecorderLag

    lag = RecorderLag(
        lag=40,
        pending=2,
        consumers=1,
        last_delivered_id="1-0",
        stream_length=50,
        events_per_s=0.0,
        updated_at=1,
    )
    config = GatewayConfig(stats_interval_s=0.1, recorder_lag_alert=10)
    async with running_gateway(gw_settings, config) as gw:
        viewer = await connect(gw, listeners, {"token": token("viewer", ["anything"])})
        await redis.set(RECORDER_LAG_KEY, lag.to_json())
        stats = await viewer.wait("systemStats", lambda d: d["recorderLag"] == 42)
        validate("systemStats", stats)
        raised = await viewer.wait("alert", lambda d: d["kind"] == "recorder_lag")
        validate("alert", raised)
        assert raised["queue"] is None and raised["value"] == 42 and raised["threshold"] == 10
        await redis.delete(RECORDER_LAG_KEY)
        await viewer.wait(
            "alert", lambda d: d["kind"] == "recorder_lag" and d["state"] == "cleared"
        )


async def test_subscribing_to_a_queue_sends_its_latest_stats_at_once(
    q: str, gw_settings: Settings, listeners: list[Listener], redis: Redis, pg: asyncpg.Pool
) -> None:
    spec = JobSpec(queue=q, name="t")
    await QueueClient(redis, gw_settings.stream_maxlen).enqueue(spec)
    await pg.execute(  # as the recorder would have written it
        "INSERT INTO jobs (id, queue, name, status, created_at)"
        " VALUES ($1, $2, 't', 'waiting', now())",
        spec.job_id,
        q,
    )
    config = GatewayConfig(stats_interval_s=60)  # one tick at start-up, the next far away
    async with running_gateway(gw_settings, config) as gw:
        client = await connect(gw, listeners, {"token": token("viewer", [q])})
        await wait_for(lambda: _has_snapshot(gw), timeout=10, what="the first snapshot")
        assert (await client.call("subscribeQueue", {"queue": q}))["ok"]
        stats = await client.wait("queueStats", lambda d: d["queue"] == q)
        assert stats["waiting"] == 1
        unknown = f"{q}-empty"
        client2 = await connect(gw, listeners, {"token": token("admin")})
        await client2.call("subscribeQueue", {"queue": unknown})
        empty = await client2.wait("queueStats", lambda d: d["queue"] == unknown)
        assert empty["waiting"] == 0 and empty["workers"] == 0


async def _has_snapshot(gw: Gateway) -> bool:
    from jobdeck_gateway.app import MONITOR

    return gw.app[MONITOR].latest is not None


async def test_long_polling_clients_receive_events_too(
    q: str, gateway: Gateway, listeners: list[Listener], redis: Redis
) -> None:
    polling: list[Listener] = []  # not `listeners`: a polite polling disconnect waits 30 s
    client = await connect(gateway, polling, {"token": token("admin")}, transports=["polling"])
    await client.call("subscribeQueue", {"queue": q})
    stream = EventStream(redis, 1000)
    for n in range(3):
        await stream.publish(started(q, f"j{n}", n))
    await client.wait("jobUpdate", lambda d: d["jobId"] == "j2")
    assert [d["jobId"] for d in client.named("jobUpdate")] == ["j0", "j1", "j2"]
    await client.sio.eio.disconnect(abort=True)


def _gone(listener: Listener) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return NS not in listener.sio.namespaces

    return check


def _past(deadline: float) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return time.time() >= deadline

    return check


async def test_a_session_ends_when_its_token_expires(
    q: str, gw_settings: Settings, listeners: list[Listener], redis: Redis
) -> None:
    settings = dataclasses.replace(gw_settings, jwt_leeway_s=1)
    async with running_gateway(settings) as gw:
        short = await connect(gw, listeners, {"token": token("viewer", [q], ttl=2)})
        # A second short session whose timer "lags": its next message must still be refused.
        lagging = await connect(gw, listeners, {"token": token("viewer", [q], ttl=2)})
        steady = await connect(gw, listeners, {"token": token("viewer", [q])})
        for client in (short, lagging, steady):
            assert (await client.call("subscribeQueue", {"queue": q}))["ok"]
        lagging_sid = lagging.sio.get_sid(NS)
        lagging_client = gw.app[SUBSCRIPTIONS].clients[lagging_sid]
        assert lagging_client.expiry is not None and lagging_client.principal.expires_at
        lagging_client.expiry.cancel()
        stream = EventStream(redis, 1000)
        await stream.publish(started(q, "j1", 1))
        for client in (short, lagging, steady):
            await client.wait("jobUpdate", lambda d: d["jobId"] == "j1")

        notice = await short.wait("tokenExpired", within=15)
        validate("tokenExpired", notice)
        assert notice["reason"] == "token_expired" and "expired" in notice["message"]
        await wait_for(_gone(short), 10)

        deadline = lagging_client.principal.expires_at + 1
        await wait_for(_past(deadline), 10)
        ack = await lagging.call("subscribeQueue", {"queue": "other"})
        validate_ack("subscribeQueue", ack)
        assert ack["ok"] is False and ack["code"] == "token_expired" and "expired" in ack["error"]
        await lagging.wait("tokenExpired")
        await wait_for(_gone(lagging), 10)
        assert set(gw.app[SUBSCRIPTIONS].clients) == {steady.sio.get_sid(NS)}

        await stream.publish(started(q, "j2", 2))
        await steady.wait("jobUpdate", lambda d: d["jobId"] == "j2")
        for expired in (short, lagging):
            assert [d["jobId"] for d in expired.named("jobUpdate")] == ["j1"]
        assert steady.named("tokenExpired") == []


async def test_a_resume_from_beyond_the_stream_end_is_refused_not_silenced(
    q: str, gateway: Gateway, listeners: list[Listener], redis: Redis
) -> None:
    stream = EventStream(redis, 1000)
    await stream.publish(started(q, "j1", 1))
    newest = (await redis.xrevrange("jobdeck:events", count=1))[0][0]
    last = newest.decode() if isinstance(newest, bytes) else str(newest)
    ahead = f"{int(last.split('-')[0]) + 60_000}-0"

    refused = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(gateway.url, {"token": token(), "lastEventId": ahead})
    assert refused.connect_error["data"]["reason"] == "bad_last_event_id"
    assert "beyond" in refused.connect_error["message"]

    client = await connect(gateway, listeners, {"token": token("viewer", [q])})
    assert (await client.call("subscribeQueue", {"queue": q}))["ok"]
    ack = await client.call("resume", {"lastEventId": ahead})
    validate_ack("resume", ack)
    assert ack["ok"] is False and ack["code"] == "bad_request" and "beyond" in ack["error"]
    await stream.publish(started(q, "j2", 2))
    await client.wait("jobUpdate", lambda d: d["jobId"] == "j2")

    # The stream's last entry itself is fine (also: the "replica ahead" path skips up to it).
    ack = await client.call("resume", {"lastEventId": client.named("jobUpdate")[-1]["eventId"]})
    validate_ack("resume", ack)
    assert ack["ok"] is True and ack["replayed"] == 0
    await stream.publish(started(q, "j3", 3))
    await client.wait("jobUpdate", lambda d: d["jobId"] == "j3")
    assert [d["jobId"] for d in client.named("jobUpdate")] == ["j2", "j3"]

    held = await connect(gateway, listeners, {"token": token("viewer", [q]), "lastEventId": last})
    assert held.named("connected")[0]["resumePending"] is True
    await held.call("subscribeQueue", {"queue": q})
    ack = await held.call("resume", {"lastEventId": ahead})
    assert ack["ok"] is False and ack["code"] == "bad_request"
    ack = await held.call("resume")  # the connect-time id is still there to resume from
    assert ack["ok"] is True and ack["replayed"] == 2
    await stream.publish(started(q, "j4", 4))
    await held.wait("jobUpdate", lambda d: d["jobId"] == "j4")
    assert [d["jobId"] for d in held.named("jobUpdate")] == ["j2", "j3", "j4"]


async def test_a_stats_subscriber_gets_stats_and_state_but_no_job_events(
    q: str, gw_settings: Settings, listeners: list[Listener], redis: Redis
) -> None:
    """What the dashboard's overview joins: its cost must not grow with the queue's traffic."""
    config = GatewayConfig(stats_interval_s=0.2)
    async with running_gateway(gw_settings, config) as gw:
        stats_only = await connect(gw, listeners, {"token": token("viewer", [q])})
        everything = await connect(gw, listeners, {"token": token("viewer", [q])})
        await wait_for(lambda: _has_snapshot(gw), timeout=10, what="the first snapshot")
        ack = await stats_only.call("subscribeStats", {"queue": q})
        assert ack["ok"] and ack["room"] == f"stats:{q}"
        validate_ack("subscribeStats", ack)
        assert (await everything.call("subscribeQueue", {"queue": q}))["ok"]
        await stats_only.wait("queueStats", lambda d: d["queue"] == q)

        queues = QueueClient(redis, gw_settings.stream_maxlen)
        await queues.enqueue(JobSpec(queue=q, name="t"), by="alice")
        await queues.pause(q, by="operator-olga")
        change = await stats_only.wait("queueStateChange", lambda d: d["queue"] == q)
        assert change["paused"] is True and change["by"] == "operator-olga"
        validate("queueStateChange", change)
        await everything.wait("queueStateChange", lambda d: d["queue"] == q)
        assert everything.named("jobAdded"), "the queue room did get the job event"
        assert not stats_only.named("jobAdded") and not stats_only.named("jobUpdate")
        # Several ticks later, still stats only.
        ticks = len(stats_only.named("queueStats"))
        await stats_only.wait("queueStats", lambda d: len(stats_only.named("queueStats")) > ticks)
        assert (await stats_only.call("unsubscribeStats", {"queue": q}))["wasSubscribed"] is True
