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


async def test_an_existing_job_logs_table_becomes_partitioned_with_its_lines() -> None:
    """0013/0014 on a job_logs table that already holds lines: they stay (in the legacy
    partition, still unique per line), new lines go to monthly partitions."""
    name = f"jobdeck_test_logs_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        await migrate(_db_url(name), upto=12)
        conn = await asyncpg.connect(_db_url(name))
        try:
            await conn.execute(
                "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
                " SELECT 'j' || n, 1, 1, now() - make_interval(days => n), 'info', 'old'"
                " FROM generate_series(1, 500) n"
            )
            applied = await migrate(_db_url(name), upto=14)
            assert applied == ["0013_job_logs_fence.sql", "0014_job_logs_partitions.sql"]
            kind = await conn.fetchval("SELECT relkind FROM pg_class WHERE relname = 'job_logs'")
            assert kind == b"p" or kind == "p"
            where = await conn.fetch(
                "SELECT tableoid::regclass::text AS p, count(*) FROM job_logs GROUP BY 1"
            )
            assert [(r["p"], r["count"]) for r in where] == [("job_logs_legacy", 500)]
            again = await conn.execute(
                "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
                " SELECT job_id, attempt, seq, ts, level, 'again' FROM job_logs"
                " ON CONFLICT (job_id, attempt, seq, ts) DO NOTHING"
            )
            assert again == "INSERT 0 0"
            later = await conn.fetchval(
                "INSERT INTO job_logs (job_id, attempt, seq, ts, level, message)"
                " VALUES ('new', 1, 1, now() + interval '70 days', 'info', 'new')"
                " RETURNING tableoid::regclass::text"
            )
            assert later.startswith("job_logs_2")
            assert await migrate(_db_url(name), upto=14) == []
        finally:
            await conn.close()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
