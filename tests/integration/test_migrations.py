import asyncio
import uuid

import asyncpg
from jobdeck.db import migrate, migration_files

from tests.conftest import _admin, _db_url


async def test_two_processes_migrating_a_fresh_database_take_turns() -> None:
    name = f"jobdeck_test_fresh_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        first, second = await asyncio.gather(migrate(_db_url(name)), migrate(_db_url(name)))
        every = [name for _, name, _ in migration_files()]
        assert sorted([first, second], key=len) == [[], every]
        assert await migrate(_db_url(name)) == []
        conn = await asyncpg.connect(_db_url(name))
        try:
            tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        finally:
            await conn.close()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert {"jobs", "job_logs", "job_templates", "job_schedules", "job_queue_configs"} <= tables
    assert {"audit_log", "exports", "schema_migrations"} <= tables
