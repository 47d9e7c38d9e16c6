"""The gateway under unauthenticated and abusive load: join deadline, per-address and
per-token bounds, message rate limits, and scope answers that leak nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
import socketio
from jobdeck.auth import mint_token
from jobdeck.settings import Settings
from jobdeck_gateway.app import SIO
from jobdeck_gateway.config import GatewayConfig

from tests.support.api import job_row, seed
from tests.support.gateway import Gateway, Listener, running_gateway, validate_ack
from tests.support.processes import wait_for

SECRET = "gateway-limit-tests-secret-0123456789abcdef"
LIMITS = GatewayConfig(
    stats_interval_s=0.2,
    join_timeout_s=0.5,
    max_connections_per_address=5,
    handshake_burst=8,
    handshakes_per_s=0.01,
    max_connections_per_token=2,
    subscribe_burst=5,
    subscribes_per_s=0.01,
    job_lookup_burst=3,
    job_lookups_per_s=0.01,
)


def token(queues: list[str] | str = "*", role: str = "viewer", sub: str = "u") -> str:
    return mint_token(SECRET, sub, [role], queues, ttl_s=600)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(dataclasses.replace(settings, jwt_secret=SECRET), LIMITS) as gw:
        yield gw


async def handshake(session: aiohttp.ClientSession, gw: Gateway) -> tuple[int, Any]:
    async with session.get(gw.url + "/socket.io/?EIO=4&transport=polling") as resp:
        text = await resp.text()
        return resp.status, (json.loads(text[1:]) if resp.status == 200 else json.loads(text))


async def test_sessions_that_never_join_are_closed_and_addresses_are_bounded(
    gateway: Gateway,
) -> None:
    eio = gateway.app[SIO].eio
    async with aiohttp.ClientSession() as session:
        opened = [await handshake(session, gateway) for _ in range(5)]
        assert all(status == 200 for status, _ in opened)
        status, body = await handshake(session, gateway)  # a 6th session from this address
        assert status == 429 and body["status"] == 429

        async def all_closed() -> bool:
            return not eio.sockets

        await wait_for(all_closed, timeout=10, what="unjoined sessions to be closed")
        sid = opened[0][1]["sid"]
        url = f"{gateway.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with session.get(url) as resp:
            assert resp.status == 400  # the session is gone
        # Sessions are free again, but the handshake bucket (8, no refill to speak of) has
        # 3 left: the refused 6th handshake did not spend one.
        statuses = [(await handshake(session, gateway))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def test_a_closed_session_is_freed_before_its_ping_is_due(gateway: Gateway) -> None:
    """Its ping timer (25 s after the handshake) does not keep a session the join deadline
    closed: what a flood took is free as soon as its sessions are closed."""
    eio = gateway.app[SIO].eio
    async with aiohttp.ClientSession() as session:
        status, body = await handshake(session, gateway)
        assert status == 200
        opened = weakref.ref(eio.sockets[body["sid"]])

        async def all_closed() -> bool:
            return not eio.sockets

        await wait_for(all_closed, timeout=10, what="the unjoined session to be closed")
        await gateway.app[SIO].guard.drain()
    gc.collect()
    assert opened() is None


async def test_a_session_that_leaves_jobs_gets_a_fresh_join_deadline(gateway: Gateway) -> None:
    eio = gateway.app[SIO].eio
    async with aiohttp.ClientSession() as session:
        status, body = await handshake(session, gateway)
        assert status == 200
        url = f"{gateway.url}/socket.io/?EIO=4&transport=polling&sid={body['sid']}"
        auth = json.dumps({"token": token()})
        async with session.post(url, data=f"40/jobs,{auth}") as resp:
            assert resp.status == 200
        async with session.get(url) as resp:
            assert "40/jobs," in await resp.text()
        await asyncio.sleep(LIMITS.join_timeout_s * 2)  # past the first deadline
        async with session.post(url, data="41/jobs,") as resp:  # leaves /jobs, stays open
            assert resp.status == 200

        async def closed() -> bool:
            return body["sid"] not in eio.sockets

        await wait_for(closed, timeout=10, what="the session to be closed at its new deadline")


async def test_a_token_may_hold_a_bounded_number_of_sessions(gateway: Gateway) -> None:
    made = [Listener() for _ in range(3)]
    try:
        for listener in made[:2]:
            await listener.connect(gateway.url, {"token": token(sub="many")})
        with pytest.raises(socketio.exceptions.ConnectionError):
            await made[2].connect(gateway.url, {"token": token(sub="many")})
        assert made[2].connect_error["data"]["reason"] == "too_many_connections"
        other = Listener()
        made.append(other)
        await other.connect(gateway.url, {"token": token(sub="someone-else")})
    finally:
        for listener in made:
            await listener.close()


async def test_room_changes_and_job_lookups_are_rate_limited(
    gateway: Gateway, pg: asyncpg.Pool
) -> None:
    client = Listener()
    try:
        await client.connect(gateway.url, {"token": token(["q"])})
        acks = [await client.call("subscribeQueue", {"queue": "q"}) for _ in range(6)]
        assert [a["ok"] for a in acks] == [True] * 5 + [False]
        assert acks[-1]["code"] == "rate_limited"
        validate_ack("subscribeQueue", acks[-1])
    finally:
        await client.close()
    lookups = Listener()
    try:
        await lookups.connect(gateway.url, {"token": token(["q"], sub="other")})
        acks = [await lookups.call("subscribeJob", {"jobId": uuid.uuid4().hex}) for _ in range(4)]
        assert [a["code"] for a in acks] == ["not_found"] * 3 + ["rate_limited"]
    finally:
        await lookups.close()


async def test_a_foreign_job_looks_exactly_like_an_unknown_one(
    settings: Settings, pg: asyncpg.Pool
) -> None:
    (foreign,) = await seed(pg, [job_row(queue="secret", status="completed")])
    (own,) = await seed(pg, [job_row(queue="mine", status="completed")])
    roomy = dataclasses.replace(LIMITS, subscribe_burst=100, job_lookup_burst=100)
    async with running_gateway(dataclasses.replace(settings, jwt_secret=SECRET), roomy) as gw:
        client = Listener()
        try:
            await client.connect(gw.url, {"token": token(["mine"])})

            async def ack(data: dict[str, Any]) -> dict[str, Any]:
                answer: dict[str, Any] = await client.call("subscribeJob", data)
                return answer

            unknown, alien = uuid.uuid4().hex, foreign["id"]
            a, b = await ack({"jobId": alien}), await ack({"jobId": unknown})
            assert a["code"] == b["code"] == "not_found"
            assert a["error"].replace(alien, "<id>") == b["error"].replace(unknown, "<id>")
            hinted = [await ack({"jobId": j, "queue": "mine"}) for j in (alien, unknown)]
            assert [h["ok"] for h in hinted] == [True, True]
            assert (await ack({"jobId": own["id"]}))["ok"] is True
        finally:
            await client.close()


async def test_cross_origin_handshakes_are_refused_unless_listed(settings: Settings) -> None:
    listed = dataclasses.replace(LIMITS, cors_origins="https://jobs.example.com")
    base = dataclasses.replace(settings, jwt_secret=SECRET)
    url = "/socket.io/?EIO=4&transport=polling"
    for config, allowed in ((LIMITS, set()), (listed, {"https://jobs.example.com"})):
        async with running_gateway(base, config) as gw, aiohttp.ClientSession() as session:
            for origin in ("https://evil.example", "https://jobs.example.com"):
                async with session.get(gw.url + url, headers={"Origin": origin}) as resp:
                    assert (resp.status == 200) is (origin in allowed), (origin, resp.status)
            host = gw.url.removeprefix("http://")
            same = {"Origin": gw.url, "Host": host}
            async with session.get(gw.url + url, headers=same) as resp:
                assert resp.status == 200  # the same origin always works
