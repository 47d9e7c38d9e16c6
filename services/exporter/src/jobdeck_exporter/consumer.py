"""Take export requests off ``jobdeck:exports`` (consumer group ``exporters``) and run them.

Replicas share the stream: each entry goes to one of them (XREADGROUP). An entry stays
pending until its export ends; the runner's lease renewals also touch the entry (XCLAIM
to itself), so only the entry of a replica that stopped goes idle, and after a lease's
length another replica takes it (XAUTOCLAIM) and claims the export in Postgres. An entry
whose export another live replica runs is left pending, not acknowledged.

The janitor, on every replica (its work is idempotent and row-locked), deletes expired
exports with their files, and re-queues exports nobody runs (their entry was lost, e.g.
with a Redis restart): no export stays "running" or "pending" for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from jobdeck.exports import (
    EXPORT_GROUP,
    EXPORT_STREAM,
    request_delete,
    request_export,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from jobdeck_exporter import metrics
from jobdeck_exporter.config import ExporterConfig
from jobdeck_exporter.queries import Q
from jobdeck_exporter.runner import ExportRunner, Outcome
from jobdeck_exporter.storage import Storage, StorageError

log = logging.getLogger(__name__)

PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)
# Outcomes after which the entry is done with; the others leave it pending.
ACKED = {Outcome.DONE, Outcome.FAILED, Outcome.GONE}


def _text(fields: dict[Any, Any], name: str) -> str | None:
    value = fields.get(name.encode(), fields.get(name))
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


class ExportConsumer:
    def __init__(
        self,
        redis: Redis,
        pg: asyncpg.Pool,
        storage: Storage,
        runner: ExportRunner,
        config: ExporterConfig,
        consumer: str,
    ) -> None:
        self.redis = redis
        self.pg = pg
        self.storage = storage
        self.runner = runner
        self.config = config
        self.consumer = consumer
        self.tasks: dict[str, asyncio.Task[None]] = {}  # entry id -> its export
        self.healthy = False
        self._stopping = False

    async def ensure_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(EXPORT_STREAM, EXPORT_GROUP, id="0", mkstream=True)

    async def run(self) -> None:
        """Read and claim entries while there is room, until ``stop``; Redis errors retried."""
        backoff = 0.2
        next_claim = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await self.ensure_group()
                free = self.config.concurrency - len(self.tasks)
                if free <= 0:
                    await asyncio.wait(
                        list(self.tasks.values()), timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                if loop.time() >= next_claim:
                    next_claim = loop.time() + self.config.lease_ms / 3000
                    for entry_id, fields in await self._claim_idle(free):
                        self._start(entry_id, fields)
                    free = self.config.concurrency - len(self.tasks)
                    if free <= 0:
                        continue
                response = await self.redis.xreadgroup(
                    EXPORT_GROUP, self.consumer, {EXPORT_STREAM: ">"}, count=free, block=1000
                )
                self.healthy = True
                backoff = 0.2
                for _stream, entries in response or ():
                    for raw_id, fields in entries:
                        self._start(_str(raw_id), fields)
            except (RedisError, OSError) as exc:
                self.healthy = False
                log.warning("export stream read failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _claim_idle(self, count: int) -> list[tuple[str, dict[Any, Any]]]:
        """Entries of replicas that stopped touching them for a lease's length."""
        result = await self.redis.xautoclaim(
            EXPORT_STREAM,
            EXPORT_GROUP,
            self.consumer,
            min_idle_time=self.config.lease_ms,
            start_id="0-0",
            count=count,
        )
        entries = result[1] if len(result) > 1 else []
        return [(_str(raw_id), fields) for raw_id, fields in entries if fields]

    def _start(self, entry_id: str, fields: dict[Any, Any]) -> None:
        if entry_id in self.tasks or self._stopping:
            return
        task = asyncio.create_task(self._handle(entry_id, fields))
        self.tasks[entry_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(entry_id, None))

    async def _handle(self, entry_id: str, fields: dict[Any, Any]) -> None:
        op = _text(fields, "op")
        try:
            if op == "export" and (export_id := _text(fields, "id")):
                outcome = await self.runner.run(export_id, lambda: self._touch(entry_id))
                if outcome in ACKED:
                    await self._ack(entry_id)
                return
            if op == "delete" and (key := _text(fields, "key")):
                await self.storage.delete(key)
                await self._ack(entry_id)
                return
            log.warning("unknown export stream entry; dropped", extra={"entry": entry_id})
            await self._ack(entry_id)
        except asyncio.CancelledError:
            if op == "export" and (export_id := _text(fields, "id")):
                # Given back by the runner: queue it afresh for a replica that is not leaving.
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(self._requeue(entry_id, export_id))
            raise
        except (StorageError, RedisError, OSError, *PG_ERRORS) as exc:
            extra = {"entry": entry_id, "error": repr(exc)}
            log.warning("export entry failed; left pending", extra=extra)

    async def _requeue(self, entry_id: str, export_id: str) -> None:
        await request_export(self.redis, export_id)
        await self._ack(entry_id)

    async def _touch(self, entry_id: str) -> None:
        """Reset the entry's idle time: it is in hand, not for XAUTOCLAIM."""
        await self.redis.xclaim(
            EXPORT_STREAM, EXPORT_GROUP, self.consumer, 0, [entry_id], justid=True
        )

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(EXPORT_STREAM, EXPORT_GROUP, entry_id)
            pipe.xdel(EXPORT_STREAM, entry_id)
            await pipe.execute()

    async def stop(self) -> None:
        """Hand running exports back (another replica resumes them); call once ``run`` has
        been cancelled, so that nothing new starts."""
        self._stopping = True
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Janitor:
    """Deletes expired exports and re-queues lost ones, every ``janitor_interval_ms``."""

    def __init__(self, redis: Redis, pg: asyncpg.Pool, storage: Storage, config: ExporterConfig):
        self.redis = redis
        self.pg = pg
        self.storage = storage
        self.config = config

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.janitor_interval_ms / 1000)
            try:
                await self.sweep()
            except (RedisError, OSError, asyncpg.PostgresError) as exc:
                log.warning("export janitor failed; will retry", extra={"error": repr(exc)})

    async def sweep(self) -> tuple[int, int]:
        """(expired exports deleted, lost exports re-queued)."""
        expired = await self.pg.fetch(Q["expired"], 100)
        for row in expired:
            if row["storage_key"]:
                try:
                    await self.storage.delete(row["storage_key"])
                except StorageError:
                    await request_delete(self.redis, row["storage_key"])  # retried by a consumer
        metrics.EXPIRED.inc(len(expired))
        lost = await self.pg.fetch(Q["lost"], 2 * self.config.lease_ms)
        for row in lost:
            await request_export(self.redis, row["id"])
        if lost:
            log.warning("re-queued exports nobody was running", extra={"count": len(lost)})
        return len(expired), len(lost)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
