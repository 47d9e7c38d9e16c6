"""Shared fixtures: a real Postgres database and a real Redis database per test.

A template database is migrated once per session and cloned for each test
(``CREATE DATABASE ... TEMPLATE``, 0.1 s); the clone is dropped by a background thread
(``DROP DATABASE`` waits ~0.7 s on the disk), so the next test need not wait for it. Each
test gets a Redis database number of its own, flushed before use. Set JOBDECK_TEST_PG /
JOBDECK_TEST_REDIS to point elsewhere.
"""

from __future__ import annotations

import asyncio
import gc
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from jobdeck.db import create_pool, migrate
from jobdeck.settings import Settings
from redis.asyncio import Redis

from tests.support.processes import ServiceProcess

PG_ADMIN = os.environ.get("JOBDECK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("JOBDECK_TEST_REDIS", "redis://127.0.0.1:6379")
TEST_JWT_SECRET = "jobdeck-test-secret-0123456789abcdef-0123"
# Fixtures of the api service's tests (``api`` client, ``api_settings``).
pytest_plugins = ["tests.support.api", "tests.support.exporter"]


def _db_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class _Dropper:
    """Drops databases in a thread of its own; ``close`` waits until all are gone."""

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="db-dropper", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def _dropper() -> Iterator[_Dropper]:
    dropper = _Dropper()
    yield dropper
    dropper.close()


@pytest.fixture(scope="session")
def pg_template(_dropper: _Dropper) -> Iterator[str]:
    """A migrated database to clone; one per test session, so concurrent sessions don't clash."""
    name = f"jobdeck_test_template_{os.getpid()}"

    async def build() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(f'CREATE DATABASE "{name}"')
        await migrate(_db_url(name))

    asyncio.run(build())
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(pg_template: str, _dropper: _Dropper) -> AsyncIterator[str]:
    name = f"jobdeck_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _db_url(name)
    _dropper.drop(name)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A flushed Redis database of the test's own, leased in db 0 so parallel runs never share."""
    admin = Redis.from_url(f"{REDIS_BASE}/0")
    try:
        db = None
        while db is None:
            for candidate in range(1, 16):
                if await admin.set(
                    f"jobdeck:test-db-lease:{candidate}", os.getpid(), nx=True, ex=900
                ):
                    db = candidate
                    break
            else:
                await asyncio.sleep(0.2)
        url = f"{REDIS_BASE}/{db}"
        client = Redis.from_url(url)
        await client.flushdb()
        await client.aclose()
        yield url
        await admin.delete(f"jobdeck:test-db-lease:{db}")
    finally:
        await admin.aclose()


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=TEST_JWT_SECRET,
        stream_maxlen=1_000_000,
        instance="test",
    )


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def service_procs() -> Iterator[list[ServiceProcess]]:
    """Collects the service processes a test starts, and stops them at teardown."""
    procs: list[ServiceProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what every test shares (modules, schemas) out of the collector's sight: the full
    collection after each test then looks only at what tests made (0.3 s -> a few ms)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so a leaked socket or loop fails the test that leaked it."""
    yield
    gc.collect()
