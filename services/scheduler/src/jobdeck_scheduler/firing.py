"""One tick: claim the due schedules, decide their slots, enqueue, record, advance.

Exactly once by construction, with any number of replicas:

- due rows are claimed with ``FOR UPDATE SKIP LOCKED``: one transaction decides a slot;
- the runs are recorded and ``next_run_at`` advanced in that same transaction, so a slot
  is either decided and recorded, or not at all (a replica killed mid-tick rolls back and
  another replica re-decides the same slots at once);
- the job id is derived from (schedule, slot) and enqueued with a Redis claim key that
  outlives the job, so the re-decided slot finds its job already queued and records it
  instead of queuing a second one;
- a unique index on (schedule, slot) refuses a slot recorded twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from jobdeck.cron import CronError, CronSchedule
from jobdeck.queues import EnqueueOutcome, QueueClient
from jobdeck.schedules import (
    CLAIM_TTL_MS,
    CatchUp,
    Overlap,
    claim_key,
    scheduled_job,
    slot_job_id,
)
from jobdeck.schedules import RunOutcome as Outcome
from redis.exceptions import RedisError

from jobdeck_scheduler import metrics
from jobdeck_scheduler.config import SchedulerConfig
from jobdeck_scheduler.outcomes import disable
from jobdeck_scheduler.policy import Action, Policies, SlotDecision, plan
from jobdeck_scheduler.queries import Q

log = logging.getLogger(__name__)

ACTOR = "scheduler"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TickResult:
    claimed: int = 0
    fired: int = 0
    held: int = 0  # schedules left due because Redis refused a slot still within grace


@dataclass
class _Fire:
    row: Mapping[str, Any]
    decision: SlotDecision
    job_id: str
    outcome: EnqueueOutcome | None = None
    error: str | None = None
    at: datetime | None = None


@dataclass
class _Rows:
    """Run rows and schedule updates of one tick, as column arrays for ``unnest``."""

    runs: list[list[Any]] = field(default_factory=lambda: [[] for _ in range(11)])
    updates: list[list[Any]] = field(default_factory=lambda: [[] for _ in range(9)])

    def run(self, *values: Any) -> None:
        for column, value in zip(self.runs, values, strict=True):
            column.append(value)

    def update(self, *values: Any) -> None:
        for column, value in zip(self.updates, values, strict=True):
            column.append(value)


def policies_of(row: Mapping[str, Any]) -> Policies:
    return Policies(
        overlap=Overlap(row["overlap_policy"]),
        catch_up=CatchUp(row["catch_up_policy"]),
        catch_up_window=timedelta(seconds=row["catch_up_window_s"]),
        catch_up_limit=row["catch_up_limit"],
        jitter_s=row["jitter_s"],
    )


class Firer:
    """Runs ticks against one Postgres pool and one queue client."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        queues: QueueClient,
        config: SchedulerConfig,
        instance: str,
        clock: Clock = utc_now,
    ) -> None:
        self.pool = pool
        self.queues = queues
        self.config = config
        self.instance = instance
        self.clock = clock
        self.grace = timedelta(milliseconds=config.grace_ms)

    async def tick(self) -> TickResult:
        started = time.perf_counter()
        now = self.clock()
        result = TickResult()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL jobdeck.scheduler = 'on'")
            rows = await conn.fetch(Q["claim_due"], now, self.config.batch_size)
            result.claimed = len(rows)
            if not rows:
                return result
            flights = await self._in_flight(conn, rows)
            fires: list[_Fire] = []
            plans = {}
            for row in rows:
                try:
                    cron = CronSchedule(row["cron_expression"], row["timezone"])
                    planned = plan(
                        row["id"],
                        cron,
                        row["next_run_at"],
                        now,
                        policies_of(row),
                        self.grace,
                        flights.get(row["id"], ()),
                    )
                except CronError as exc:
                    # Edited behind the API's back: stop it loudly rather than guess.
                    await disable(conn, row["id"], f"cannot compute its fire times: {exc}")
                    continue
                plans[row["id"]] = planned
                for d in planned.fires():
                    fires.append(_Fire(row, d, slot_job_id(row["id"], d.slot)))
            await self._enqueue(fires)
            by_schedule: dict[str, list[_Fire]] = defaultdict(list)
            for f in fires:
                by_schedule[f.row["id"]].append(f)
            rows_out = _Rows()
            for row in rows:
                if row["id"] not in plans:
                    continue
                held = self._record(row, plans[row["id"]], by_schedule[row["id"]], rows_out)
                result.held += held
                result.fired += 0 if held else len(by_schedule[row["id"]])
            if rows_out.runs[0]:
                await conn.execute(Q["insert_runs"], *rows_out.runs)
            if rows_out.updates[0]:
                for state in await conn.fetch(Q["advance"], *rows_out.updates):
                    await self._failure_limit(conn, state)
        metrics.TICK_SECONDS.observe(time.perf_counter() - started)
        return result

    async def _failure_limit(self, conn: asyncpg.Connection, state: Mapping[str, Any]) -> None:
        """A schedule whose slots could not be queued reaches its failure limit too."""
        limit = state["max_consecutive_failures"]
        if state["failed"] and limit > 0 and state["consecutive_failures"] >= limit:
            await disable(
                conn,
                state["id"],
                f"{state['consecutive_failures']} consecutive failed runs (limit {limit}); "
                f"last error: {state['last_error']}",
            )

    async def _in_flight(
        self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[str | None]]:
        ids = [r["id"] for r in rows if r["overlap_policy"] != Overlap.ALLOW]
        found: dict[str, list[str | None]] = defaultdict(list)
        if ids:
            for r in await conn.fetch(Q["open_runs"], ids):
                found[r["schedule_id"]].append(r["status"])
        return found

    async def _enqueue(self, fires: list[_Fire]) -> None:
        """Queue the slots' jobs, pipelined; on a Redis error every fire of the tick fails."""
        if not fires:
            return
        items = []
        for f in fires:
            run_at = f.decision.run_at
            spec = scheduled_job(
                f.row, f.job_id, int(run_at.timestamp() * 1000) if run_at else None
            )
            items.append((spec, claim_key(f.job_id)))
        try:
            outcomes = await self.queues.enqueue_claimed_many(
                items, by=ACTOR, claim_ttl_ms=CLAIM_TTL_MS
            )
        except (RedisError, OSError) as exc:
            error = f"{exc.__class__.__name__}: {exc}"
            for f in fires:
                f.error = error
        else:
            for f, outcome in zip(fires, outcomes, strict=True):
                f.outcome = outcome
        at = self.clock()
        for f in fires:
            f.at = at

    def _record(self, row: Mapping[str, Any], planned: Any, fires: list[_Fire], out: _Rows) -> int:
        """Add one schedule's runs and counters to ``out``; 1 if it must be retried instead."""
        now = self.clock()
        grace_s = self.grace.total_seconds()
        if any(f.error and (now - f.decision.slot).total_seconds() <= grace_s for f in fires):
            metrics.FAILURES.labels("enqueue").inc()
            return 1  # Redis refused a slot that may still fire on time: retry next tick
        fired = {f.decision.slot: f for f in fires}
        counts = {o: 0 for o in Outcome}
        last_run_at: datetime | None = None
        last_job: str | None = None
        last_error: str | None = None
        for d in planned.decisions:
            f = fired.get(d.slot) if d.action is Action.FIRE else None
            if f is not None and f.error is None:
                assert f.at is not None
                lag_ms = int((f.at - d.slot).total_seconds() * 1000)
                reason = None
                if f.outcome is not EnqueueOutcome.QUEUED:
                    reason = "job was already queued for this slot by an earlier attempt"
                out.run(
                    row["id"], d.slot, None, 1, str(d.trigger), str(Outcome.ENQUEUED), reason,
                    f.at, lag_ms, f.job_id, self.instance,
                )  # fmt: skip
                metrics.FIRE_LAG.labels(str(d.trigger)).observe(max(0.0, lag_ms / 1000))
                outcome, last_run_at, last_job = Outcome.ENQUEUED, f.at, f.job_id
            elif f is not None:
                reason = f"could not enqueue within the grace period: {f.error}"
                out.run(
                    row["id"], d.slot, None, 1, str(d.trigger), str(Outcome.FAILED_TO_ENQUEUE),
                    reason, None, None, f.job_id, self.instance,
                )  # fmt: skip
                outcome, last_error = Outcome.FAILED_TO_ENQUEUE, reason
            else:
                outcome = (
                    Outcome.SKIPPED_OVERLAP if d.action is Action.SKIP_OVERLAP else Outcome.MISSED
                )
                out.run(
                    row["id"], d.slot, d.last_slot, d.count, str(d.trigger), str(outcome),
                    d.reason, None, None, None, self.instance,
                )  # fmt: skip
            counts[outcome] += d.count
            metrics.RUNS.labels(str(outcome)).inc(d.count)
        out.update(
            row["id"],
            planned.next_run_at,
            last_run_at,
            last_job,
            counts[Outcome.ENQUEUED],
            counts[Outcome.SKIPPED_OVERLAP],
            counts[Outcome.MISSED],
            counts[Outcome.FAILED_TO_ENQUEUE],
            last_error,
        )
        return 0
