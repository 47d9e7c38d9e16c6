"""Postgres access: pools with JSON codecs, and the migration runner.

Migrations are the numbered ``migrations/NNNN_name.sql`` files, applied in order, each
in its own transaction, under an advisory lock so that two processes applying them at
once take turns and the second finds nothing left to do.
"""

from __future__ import annotations

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


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
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
