"""Per-caller rate limits on Redis: 429 with Retry-After, a stricter bulk bucket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_api.app import build_app
from jobdeck_api.security import LeasedLimiter, RateLimits, limits_uri
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from tests.support.api import auth


@pytest.fixture
async def limited(api_settings: Settings) -> AsyncIterator[TestClient]:
    app = build_app(api_settings, RateLimits(default="3/minute", bulk="1/minute"))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_default_bucket_per_caller(limited: TestClient) -> None:
    for _ in range(3):
        assert (await limited.get("/api/v1/jobs/queues", headers=auth(sub="ann"))).status == 200
    resp = await limited.get("/api/v1/jobs/queues", headers=auth(sub="ann"))
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "rate limit" in (await resp.json())["detail"]
    # Another caller has its own budget; health checks are never limited.
    assert (await limited.get("/api/v1/jobs/queues", headers=auth(sub="bob"))).status == 200
    assert (await limited.get("/healthz")).status == 200


async def test_bulk_bucket_is_stricter(limited: TestClient) -> None:
    body = {"jobIds": ["nope"]}
    headers = auth("operator", sub="carol")
    assert (
        await limited.post("/api/v1/jobs/bulk/cancel", json=body, headers=headers)
    ).status == 200
    second = await limited.post("/api/v1/jobs/bulk/retry", json=body, headers=headers)
    assert second.status == 429 and second.headers["Retry-After"]
    # The ordinary bucket is still open for the same caller.
    assert (await limited.get("/api/v1/jobs/queues", headers=headers)).status == 200


@pytest.fixture
async def leased(redis: Redis, redis_url: str) -> Callable[..., LeasedLimiter]:
    """Limiters as API processes hold them (each its own leases), on one Redis."""

    def make(**options: Any) -> LeasedLimiter:
        storage = RedisStorage(
            limits_uri(redis_url),
            implementation="redispy",
            key_prefix="t",
            connection_pool=redis.connection_pool,
        )
        return LeasedLimiter(MovingWindowRateLimiter(storage), **options)

    return make


async def test_leased_hits_never_exceed_the_limit_across_processes(
    leased: Callable[..., LeasedLimiter],
) -> None:
    item = parse("500/minute")  # reserved 5 at a time
    one, two = leased(), leased()
    assert one.chunk(item) == 5
    hits = [p.hit(item, "default", "dan") for _ in range(400) for p in (one, two)]
    allowed = sum(await asyncio.gather(*hits))
    # Hits reserved but not yet spent by one process may refuse the other a few early.
    assert 500 - 2 * 4 <= allowed <= 500
    # Once everything is reserved, nobody gets more until the window moves.
    assert not await one.hit(item, "default", "dan")
    assert not await two.hit(item, "default", "dan")
    assert 1 <= await one.retry_after(item, "default", "dan") <= 60


async def test_small_limits_are_counted_one_by_one(leased: Callable[..., LeasedLimiter]) -> None:
    item = parse("5/minute")
    one, two = leased(), leased()
    assert one.chunk(item) == 1
    results = [await p.hit(item, "default", "eve") for p in (one, two) * 4]
    assert results == [True] * 5 + [False] * 3


async def test_an_unspent_lease_expires(leased: Callable[..., LeasedLimiter]) -> None:
    item = parse("1000/minute")
    limiter = leased(lease_s=0.0)  # every lease already over: reserve each time
    assert await limiter.hit(item, "default", "fay")
    assert await limiter.hit(item, "default", "fay")
    stats = await limiter.limiter.get_window_stats(item, "default", "fay")
    assert stats.remaining == 1000 - 2 * limiter.chunk(item)
