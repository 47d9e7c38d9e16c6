"""The retry rules' sample (``retry_outcomes``): per fingerprint, its latest N failed
attempts in the window and scope, against the same figures computed in Python from the
rows the recorder wrote. Run more than five times per case, so that the prepared
statement's generic plan answers too."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from jobdeck.events import now_ms
from jobdeck_api.analytics_scope import SQL
from redis.asyncio import Redis

from tests.integration.test_analytics_exact import HOUR, record_histories


def expected(
    rows: list[asyncpg.Record],
    lo: datetime,
    hi: datetime,
    queues: list[str] | None,
    name: str | None,
    limit: int,
) -> dict[str, tuple[int, int]]:
    """Per fingerprint: (retried, recovered) over its latest ``limit`` attempts in scope."""
    picked: dict[str, list[asyncpg.Record]] = {}
    for r in sorted(rows, key=lambda r: r["failed_at"], reverse=True):
        if not lo <= r["failed_at"] < hi:
            continue
        if (queues is not None and r["queue"] not in queues) or name not in (None, r["name"]):
            continue
        sample = picked.setdefault(r["fingerprint"], [])
        if len(sample) < limit:
            sample.append(r)
    return {
        fp: (
            sum(r["attempts"] > r["attempt"] for r in sample),
            sum(r["attempts"] > r["attempt"] and r["status"] == "completed" for r in sample),
        )
        for fp, sample in picked.items()
    }


async def test_latest_attempts_per_fingerprint_in_scope(redis: Redis, pg: asyncpg.Pool) -> None:
    base = now_ms() // HOUR * HOUR - 6 * HOUR
    await record_histories(redis, pg, base, 160, seed=23)
    rows = await pg.fetch(
        "SELECT f.fingerprint, f.queue, f.name, f.attempt, f.failed_at, j.attempts, j.status"
        " FROM job_attempt_failures f JOIN jobs j ON j.id = f.job_id"
    )
    prints = sorted({r["fingerprint"] for r in rows})
    assert len(prints) > 1 and any(r["attempts"] > r["attempt"] for r in rows)

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC)

    windows = [(at(base), at(base + 6 * HOUR)), (at(base + HOUR), at(base + 3 * HOUR))]
    async with pg.acquire() as conn:  # one connection: one cached prepared statement
        for lo, hi in windows:
            for queues in (None, ["alpha"], ["alpha", "gamma"]):
                for name in (None, "parse"):
                    for limit in (2, 5, 500):
                        want = expected(rows, lo, hi, queues, name, limit)
                        for _ in range(7):
                            got = await conn.fetch(
                                SQL["retry_outcomes"], lo, hi, queues, name, prints, limit
                            )
                            assert {
                                r["fingerprint"]: (r["retried"], r["recovered"]) for r in got
                            } == want, (lo, hi, queues, name, limit)
