"""Retention: finished jobs and their logs are deleted once past their queue's retention.

A history that only grows makes every search, count and backup slower. Each queue keeps
its completed jobs ``keep_completed_days``, its failed and cancelled jobs
``keep_failed_days`` and the log lines of its finished jobs ``keep_logs_days`` (queue
config columns; NULL takes the recorder's ``retention_*_days`` default, 0 keeps forever).

One replica at a time prunes: a pass runs while holding a Postgres session advisory lock
(``pg_try_advisory_lock``) on the connection it uses; the others find it taken and skip
their pass. The lock needs no lease or renewal: it is released when the pass ends, or by
Postgres when the holder's connection dies with it. Deleting is done in small batches (one
statement each, oldest first along ``jobs_retention_idx``, ``FOR UPDATE SKIP LOCKED`` so
that no row the recorder writes waits), with a rest after each batch in proportion to the
time it took (``retention_duty_pct``: a database slowed by searches slows the pruner
down with it), so that no lock is held long and search latency is barely touched; a pass
does at most ``retention_max_batches`` and the next pass goes on.

``job_logs`` is partitioned by month of the line's time (migration 0014): each pass keeps
the next months' partitions created, and drops a whole month once it ended longer ago
than the longest log retention of any queue (none while a queue keeps its logs forever).
The batched log deletes still apply each queue's own, shorter, retention. A dropped month
goes by the lines' time, so a line older than the longest retention goes even when its
job, retried much later, finished recently.

Pruning deletes rows; it is not job state, so no event is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from jobdeck.events import JobStatus
from jobdeck.sql import SHARED

from jobdeck_recorder import metrics
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.store import QUERIES

log = logging.getLogger(__name__)

PRUNER_LOCK_ID = 0x6A6F6270  # "jobp"
FINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TOMBSTONE_DAYS = 30
LOG_MONTHS_AHEAD = 3


@dataclass(frozen=True)
class Retention:
    """Days a queue keeps each kind of history; 0 = forever."""

    completed_days: int
    failed_days: int
    logs_days: int

    def job_days(self, status: JobStatus) -> int:
        return self.completed_days if status is JobStatus.COMPLETED else self.failed_days


def retention_for(row: Mapping[str, Any] | None, config: RecorderConfig) -> Retention:
    """A queue's retention: its config's values where set, the recorder's defaults elsewhere."""

    def pick(column: str, default: int) -> int:
        value = row.get(column) if row is not None else None
        return default if value is None else int(value)

    return Retention(
        completed_days=pick("keep_completed_days", config.retention_completed_days),
        failed_days=pick("keep_failed_days", config.retention_failed_days),
        logs_days=pick("keep_logs_days", config.retention_logs_days),
    )


def cutoff(now: datetime, days: int) -> datetime | None:
    """Jobs finished before this are past retention; None keeps them forever."""
    return now - timedelta(days=days) if days > 0 else None


def rest_after(took_s: float, config: RecorderConfig) -> float:
    """Seconds to rest after a batch that took ``took_s``: enough that the pruner works at
    most ``retention_duty_pct`` of the time, and at least ``retention_pause_ms``."""
    duty = config.retention_duty_pct / 100
    return max(config.retention_pause_ms / 1000, took_s * (1 - duty) / duty)


def longest_log_retention(
    queues: list[str], configs: Mapping[str, Mapping[str, Any]], config: RecorderConfig
) -> timedelta | None:
    """How long the queue that keeps its logs longest keeps them (the default counts, for
    queues not seen yet); None when one keeps them forever."""
    days = [retention_for(configs.get(q), config).logs_days for q in [*queues, *configs]]
    days.append(config.retention_logs_days)
    return None if 0 in days else timedelta(days=max(days))


@dataclass
class PassResult:
    jobs: int = 0
    logs: int = 0
    batches: int = 0
    seconds: float = 0.0
    per_queue: dict[str, int] = field(default_factory=dict)


class Pruner:
    def __init__(self, pool: asyncpg.Pool, config: RecorderConfig) -> None:
        self.pool = pool
        self.config = config
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """A pass every ``retention_interval_ms`` until stopped; a failed pass is retried."""
        while not self._stop.is_set():
            try:
                await self.run_once()
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("retention pass failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.config.retention_interval_ms / 1000)

    async def run_once(self, now: datetime | None = None) -> PassResult | None:
        """One bounded pass if no other replica runs one; None if one does."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PRUNER_LOCK_ID):
                return None
            try:
                return await self._pass(conn, now or datetime.now(UTC))
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", PRUNER_LOCK_ID)

    async def _pass(self, conn: asyncpg.Connection, now: datetime) -> PassResult:
        started = time.perf_counter()
        result = PassResult()
        configs = {r["queue"]: r for r in await conn.fetch(QUERIES["retention_configs"])}
        queues = [r["queue"] for r in await conn.fetch(SHARED["known_queues"])]
        await self._maintain_log_partitions(conn, now, queues, configs)
        for queue in queues:
            retention = retention_for(configs.get(queue), self.config)
            for status in FINAL:
                await self._prune_jobs(
                    conn, queue, status, cutoff(now, retention.job_days(status)), result
                )
                await self._prune_logs(
                    conn, queue, status, cutoff(now, retention.logs_days), result
                )
        # Tombstones of deleted jobs outlive any redelivery of their events by far.
        await conn.execute(
            QUERIES["prune_tombstones"],
            now - timedelta(days=TOMBSTONE_DAYS),
            self.config.retention_batch,
        )
        result.seconds = time.perf_counter() - started
        metrics.PRUNER_PASS_SECONDS.observe(result.seconds)
        metrics.PRUNER_LAST_PASS.set(time.time())
        if result.jobs or result.logs:
            log.info(
                "retention pass",
                extra={"jobs": result.jobs, "logs": result.logs, "batches": result.batches},
            )
        return result

    async def _maintain_log_partitions(
        self,
        conn: asyncpg.Connection,
        now: datetime,
        queues: list[str],
        configs: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Create the coming months' log partitions; drop the months past every retention.
        A failure (a lock not granted within its timeout) is logged; the pass goes on."""
        try:
            await conn.fetchval(QUERIES["ensure_log_partitions"], LOG_MONTHS_AHEAD)
            keep = longest_log_retention(queues, configs, self.config)
            if keep is None:
                return
            for name in await conn.fetch(QUERIES["drop_log_partitions"], now - keep):
                metrics.PRUNER_PARTITIONS_DROPPED.inc()
                log.info("log partition dropped", extra={"partition": name[0]})
        except asyncpg.PostgresError as exc:
            metrics.PRUNER_PARTITION_ERRORS.inc()
            log.warning("log partition maintenance failed", extra={"error": repr(exc)})

    def _budget_left(self, result: PassResult) -> bool:
        return result.batches < self.config.retention_max_batches and not self._stop.is_set()

    async def _batch_done(self, result: PassResult, took_s: float) -> None:
        result.batches += 1
        metrics.PRUNER_BATCHES.inc()
        await asyncio.sleep(rest_after(took_s, self.config))

    async def _prune_jobs(
        self,
        conn: asyncpg.Connection,
        queue: str,
        status: JobStatus,
        before: datetime | None,
        result: PassResult,
    ) -> None:
        batch = self.config.retention_batch
        while before is not None and self._budget_left(result):
            started = time.perf_counter()
            row = await conn.fetchrow(QUERIES["prune_jobs"], queue, status.value, before, batch)
            assert row is not None
            jobs, logs = int(row["jobs"]), int(row["logs"])
            result.jobs += jobs
            result.logs += logs
            result.per_queue[queue] = result.per_queue.get(queue, 0) + jobs
            metrics.PRUNED.labels("jobs").inc(jobs)
            metrics.PRUNED.labels("job_logs").inc(logs)
            await self._batch_done(result, time.perf_counter() - started)
            if jobs < batch:
                return

    async def _prune_logs(
        self,
        conn: asyncpg.Connection,
        queue: str,
        status: JobStatus,
        before: datetime | None,
        result: PassResult,
    ) -> None:
        if before is None:
            return
        since = await conn.fetchval(QUERIES["logs_pruned_until"], queue, status.value) or EPOCH
        batch = self.config.retention_batch
        while since < before and self._budget_left(result):
            started = time.perf_counter()
            row = await conn.fetchrow(
                QUERIES["prune_logs"], queue, status.value, since, before, batch
            )
            assert row is not None
            jobs, logs = int(row["jobs"]), int(row["logs"])
            since = row["until"] if row["until"] is not None else before
            await conn.execute(QUERIES["save_logs_pruned_until"], queue, status.value, since)
            result.logs += logs
            metrics.PRUNED.labels("job_logs").inc(logs)
            await self._batch_done(result, time.perf_counter() - started)
            if jobs < batch:
                return
