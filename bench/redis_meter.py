"""Redis work of one measured window: commands run and Redis CPU, from ``INFO`` deltas.

``CONFIG RESETSTAT`` starts each window (so ``INFO commandstats`` counts from zero, commands run
inside scripts included); Redis CPU is the delta of ``used_cpu_sys + used_cpu_user`` (RESETSTAT
does not reset it). Both are server-wide: anything else using the same Redis server (other test
suites on this shared machine) lands in the window too. So each window can be corrected by the
quieter of the background rates sampled just before and just after it while nothing of the
bench runs, and callers repeat windows and keep medians.

Also leases the bench a Redis database the way the test fixtures do (``tests/conftest.py``), so a
bench never flushes a database a test is using, nor a test one the bench is using; a database
that holds keys without a lease (someone else's) is not taken either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

# The meter's own commands, not the system's work.
OWN_COMMANDS = frozenset({"info", "config|resetstat", "config"})
LEASE_PREFIX = "jobdeck:test-db-lease:"
LEASE_TTL_S = 900
# Tests lease from 1 upwards, benches from the top down. A database that holds keys although
# nobody leased it is in use all the same, and is skipped.
CANDIDATE_DBS = (15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)


@dataclass(frozen=True)
class RedisUsage:
    """What Redis did over a window of ``seconds``."""

    commands: float
    cpu_s: float
    seconds: float

    def minus_background(self, background: RedisUsage) -> RedisUsage:
        """This window less what the background rate would have done in the same time."""
        if background.seconds <= 0:
            return self
        scale = self.seconds / background.seconds
        return RedisUsage(
            commands=max(self.commands - background.commands * scale, 0.0),
            cpu_s=max(self.cpu_s - background.cpu_s * scale, 0.0),
            seconds=self.seconds,
        )


def quieter(a: RedisUsage, b: RedisUsage) -> RedisUsage:
    """The lower background rate of two samples (per second), each figure on its own.

    The background on a shared server is bursty: a burst that lands in one sample must not be
    subtracted from a window it did not hit, so the window is corrected by the quieter sample
    taken around it.
    """
    return RedisUsage(
        commands=min(a.commands / a.seconds, b.commands / b.seconds),
        cpu_s=min(a.cpu_s / a.seconds, b.cpu_s / b.seconds),
        seconds=1.0,
    )


@dataclass(frozen=True)
class _Snapshot:
    commands: int
    cpu_s: float
    at: float


class RedisMeter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._start: _Snapshot | None = None

    async def _snapshot(self) -> _Snapshot:
        stats = await self.redis.info("commandstats")
        cpu = await self.redis.info("cpu")
        commands = sum(
            int(v["calls"])
            for k, v in stats.items()
            if k.removeprefix("cmdstat_") not in OWN_COMMANDS
        )
        return _Snapshot(
            commands,
            float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            time.perf_counter(),
        )

    async def start(self) -> None:
        await self.redis.config_resetstat()
        self._start = await self._snapshot()

    async def stop(self, own_commands: int = 0) -> RedisUsage:
        """The window since ``start``, less ``own_commands`` the caller ran to watch it."""
        assert self._start is not None, "start() first"
        end = await self._snapshot()
        return RedisUsage(
            commands=end.commands - self._start.commands - own_commands,
            cpu_s=end.cpu_s - self._start.cpu_s,
            seconds=end.at - self._start.at,
        )

    async def background(self, seconds: float) -> RedisUsage:
        """What the rest of the world does to this Redis in ``seconds`` while we idle."""
        await self.start()
        await asyncio.sleep(seconds)
        return await self.stop()


@contextlib.asynccontextmanager
async def leased_db(base_url: str) -> AsyncIterator[str]:
    """A flushed Redis database of the bench's own, leased as the test fixtures lease theirs."""
    admin = Redis.from_url(f"{base_url}/0")
    db: int | None = None
    try:
        deadline = time.monotonic() + 120
        while db is None:
            for candidate in CANDIDATE_DBS:
                holder = f"bench-{os.getpid()}"
                if await admin.set(LEASE_PREFIX + str(candidate), holder, nx=True, ex=LEASE_TTL_S):
                    probe = Redis.from_url(f"{base_url}/{candidate}")
                    in_use = await probe.dbsize()
                    await probe.aclose()
                    if not in_use:
                        db = candidate
                        break
                    await admin.delete(LEASE_PREFIX + str(candidate))
            else:
                if time.monotonic() > deadline:
                    raise TimeoutError("every Redis database is leased")
                await asyncio.sleep(0.5)
        keeper = asyncio.create_task(_keep_lease(admin, db))
        url = f"{base_url}/{db}"
        client = Redis.from_url(url)
        await client.flushdb()
        try:
            yield url
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await client.flushdb()
            await client.aclose()
    finally:
        if db is not None:
            await admin.delete(LEASE_PREFIX + str(db))
        await admin.aclose()


async def _keep_lease(admin: Redis, db: int) -> None:
    while True:
        await asyncio.sleep(LEASE_TTL_S / 3)
        await admin.expire(LEASE_PREFIX + str(db), LEASE_TTL_S)
