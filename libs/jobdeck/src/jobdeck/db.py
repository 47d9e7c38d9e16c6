"""Postgres access: pools with JSON codecs, and the migration runner.

Migrations are the numbered ``migrations/NNNN_name.sql`` files, applied in order, each
in its own transaction, under an advisory lock so that two processes applying them at
once take turns and the second finds nothing left to do.

A file whose first line is ``-- jobdeck: no-transaction`` runs outside a transaction, one
statement at a time: ``CREATE INDEX CONCURRENTLY`` (the way to index a big table without
blocking its writers) refuses to run inside one. Such a file is recorded as applied only
once every statement succeeded; written to be re-run from the top after a failure (drop
an index a failed concurrent build left invalid before building it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 0x6A6F6264  # "jobd"
NO_TRANSACTION = "-- jobdeck: no-transaction"
MIGRATION_LOCK_POLL_S = 0.2


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10, **kw: Any) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kw
    )


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, in order."""
    found = []
    for entry in resources.files("jobdeck.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """The statements of a no-transaction migration: each ends with ``;`` at a line's end
    (such files hold plain DDL, no function bodies); comment lines are dropped."""
    found: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        if line.lstrip().startswith("--") or not line.strip():
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            found.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if current:
        found.append("\n".join(current))
    return found


async def _take_migration_lock(conn: asyncpg.Connection) -> None:
    """Wait for the migration lock by polling, not in a blocked statement: a waiting
    session must hold no transaction open, or the holder's ``CREATE INDEX CONCURRENTLY``
    (which waits for every open transaction) would wait for it: a deadlock."""
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_ID):
            return
        await asyncio.sleep(MIGRATION_LOCK_POLL_S)


async def migrate(dsn: str, upto: int | None = None) -> list[str]:
    """Apply pending migrations (those numbered up to ``upto``, if given: a test's database
    as an older release left it); return the names applied (empty when up to date)."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await _take_migration_lock(conn)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migration_files():
            if version in done or (upto is not None and version > upto):
                continue
            if sql.startswith(NO_TRANSACTION):
                for statement in statements(sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            else:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        name,
                    )
            log.info("migration applied", extra={"migration": name})
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
        await conn.close()
    return applied


async def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` if it does not exist (for fresh machines)."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"refusing to create a database named {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # created meanwhile
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
