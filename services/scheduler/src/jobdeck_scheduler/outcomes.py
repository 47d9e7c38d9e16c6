"""What happened to the jobs the schedules enqueued, and the failure policy it feeds.

The recorder is the only writer of job state; this pass reads its rows. Each finished
job marks its run (``job_status``) and moves its schedule's consecutive-failure count. A
schedule that reaches its limit disables itself in the same transaction that flips
``is_enabled`` (so it happens once), writes the audit log and leaves ``alert_pending``
set; ``publish_alerts`` then puts one ``alert`` event on the stream, guarded by a Redis
key written in the same script, and clears the flag.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import asyncpg
from jobdeck.events import Event, EventType, encode, now_ms
from jobdeck.streams import EVENTS
from redis.asyncio import Redis

from jobdeck_scheduler import metrics
from jobdeck_scheduler.policy import fold_failures
from jobdeck_scheduler.queries import Q

log = logging.getLogger(__name__)

ACTOR = "scheduler"
ALERT_KIND = "schedule_disabled"
ALERTED_PREFIX = "jobdeck:scheduler:alerted:"
ALERTED_TTL_MS = 30 * 86_400_000

# KEYS: alerted key, stream; ARGV: event bytes, stream maxlen, key expiry ms.
# The key makes a second publish of the same disable (a replica died before clearing the
# flag) a no-op: one disable, one alert.
_PUBLISH_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
return 1
"""


async def disable(conn: asyncpg.Connection, schedule_id: str, reason: str) -> bool:
    """Disable a schedule on its own, inside the caller's transaction; False if it already was.

    Audited and alerted (through ``alert_pending``) only when this call flipped it.
    """
    flipped = await conn.fetchval(Q["auto_disable"], schedule_id, reason)
    if flipped is None:
        return False
    await conn.execute(
        Q["insert_audit"],
        ACTOR,
        "schedules.auto_disable",
        [schedule_id],
        "ok",
        json.dumps({"reason": reason}),
    )
    metrics.AUTO_DISABLED.inc()
    log.warning("schedule disabled", extra={"schedule_id": schedule_id, "reason": reason})
    return True


async def settle(pool: asyncpg.Pool, batch: int) -> int:
    """Fold finished jobs into their runs and schedules; returns the runs settled."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL jobdeck.scheduler = 'on'")
        rows = await conn.fetch(Q["settle_runs"], batch)
        per_schedule: dict[str, list[Any]] = defaultdict(list)
        for r in sorted(rows, key=lambda r: r["scheduled_at"]):
            per_schedule[r["schedule_id"]].append(r)
        for schedule_id in sorted(per_schedule):  # one lock order for every replica
            runs = per_schedule[schedule_id]
            reset, tail = fold_failures([r["job_status"] for r in runs])
            failed = [r for r in runs if r["job_status"] == "failed"]
            last_error = failed[-1]["error_message"] if failed and tail else None
            state = await conn.fetchrow(Q["apply_outcomes"], schedule_id, reset, tail, last_error)
            if state is None:
                continue
            limit = state["max_consecutive_failures"]
            if state["is_enabled"] and limit > 0 and state["consecutive_failures"] >= limit:
                await disable(
                    conn,
                    schedule_id,
                    f"{state['consecutive_failures']} consecutive failed runs "
                    f"(limit {limit}); last error: {last_error or 'unknown'}",
                )
        return len(rows)


def alert_event(row: Mapping[str, Any]) -> Event:
    """The ``alert`` of a schedule that disabled itself, on its template's queue (so the
    gateway sends it to every client that may see that queue)."""
    return Event(
        type=EventType.ALERT,
        queue=row["queue"],
        ts=now_ms(),
        fields={
            "severity": "critical",
            "kind": ALERT_KIND,
            "state": "raised",
            "value": row["consecutive_failures"],
            "threshold": row["max_consecutive_failures"],
            "message": (
                f"schedule {row['name']!r} ({row['id']}) disabled itself: {row['disabled_reason']}"
            ),
            "schedule_id": row["id"],
        },
    )


async def publish_alerts(pool: asyncpg.Pool, redis: Redis, stream_maxlen: int) -> int:
    """Put one ``alert`` on the stream per schedule that disabled itself; returns how many."""
    script = redis.register_script(_PUBLISH_ONCE)
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL jobdeck.scheduler = 'on'")
        for row in await conn.fetch(Q["pending_alerts"], 100):
            disabled_at = row["disabled_at"]
            stamp = int(disabled_at.timestamp() * 1000) if disabled_at else 0
            event = alert_event(row)
            key = f"{ALERTED_PREFIX}{row['id']}:{stamp}"
            args: list[bytes | int] = [encode(event), stream_maxlen, ALERTED_TTL_MS]
            sent += int(await script(keys=[key, EVENTS], args=args))
            await conn.execute(Q["alert_sent"], row["id"])
    return sent
