"""Run one export: claim it, write its file from the snapshot, store it, say so.

An export runs on one replica at a time: claiming it sets ``owner`` and a lease that a
background task renews (with the progress) while it runs. A replica that dies stops
renewing; once the lease has run out another replica's claim succeeds and the export
starts over there (``attempts`` counts owners; past ``max_attempts`` it is failed with
the reason instead). A runner that finds its lease gone (taken over, or the export
deleted) stops and removes what it wrote. Every end (done, failed) is written to the
row, pushed to the API's waiting request and published as an ``export.*`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
from jobdeck.events import EventType
from jobdeck.exports import DONE_TTL_S, ExportFormat, ExportStatus, done_key, export_event
from jobdeck.streams import EventStream
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck_exporter import excel, metrics
from jobdeck_exporter.config import ExporterConfig
from jobdeck_exporter.excel import ExcelWriter, SheetTooLarge
from jobdeck_exporter.formats import TextFile
from jobdeck_exporter.queries import Q
from jobdeck_exporter.source import ExportJob, SnapshotReader
from jobdeck_exporter.storage import Storage, StorageError
from jobdeck_exporter.threadpipe import ThreadPipe

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    BUSY = "busy"  # another live replica runs it
    GONE = "gone"  # finished already, or deleted
    LOST = "lost"  # our lease ran out and another replica took it over


class ExportFailed(Exception):
    """The export cannot be produced; the message is the reason the requester sees."""


class LeaseLost(Exception):
    """Another replica took the export over, or it was deleted."""


class Progress:
    """Rows written so far, shared by the writing loop and the lease keeper."""

    def __init__(self) -> None:
        self.rows_done = 0
        self.estimated: int | None = None
        self.lost = False


class _Ticker:
    """True at most once per ``interval`` seconds (the first call included)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + self.interval
        return True


class ExportRunner:
    def __init__(
        self,
        pg: asyncpg.Pool,
        redis: Redis,
        storage: Storage,
        config: ExporterConfig,
        owner: str,
        events: EventStream,
    ) -> None:
        self.pg = pg
        self.redis = redis
        self.storage = storage
        self.config = config
        self.owner = owner
        self.events = events

    async def run(
        self, export_id: str, keepalive: Callable[[], Awaitable[None]] | None = None
    ) -> Outcome:
        """Claim and run ``export_id``; ``keepalive`` runs with each lease renewal."""
        row = await self.pg.fetchrow(Q["claim"], export_id, self.owner, self.config.lease_ms)
        if row is None:
            state = await self.pg.fetchrow(Q["state"], export_id)
            if state is not None and state["status"] == ExportStatus.RUNNING and state["leased"]:
                return Outcome.BUSY
            return Outcome.GONE
        job = ExportJob.from_row(row)
        if job.attempt > self.config.max_attempts:
            reason = (
                f"the exporter running this export stopped {job.attempt - 1} times"
                " (killed or lost); not trying again"
            )
            await self.fail(job.id, job.requested_by, reason)
            return Outcome.FAILED
        if job.attempt > 1:
            metrics.TAKEN_OVER.inc()
        metrics.RUNNING.inc()
        started = time.perf_counter()
        progress = Progress()
        keeper = asyncio.create_task(self._keep_lease(job, progress, keepalive))
        try:
            outcome = await self._produce(job, progress, started)
        except LeaseLost:
            log.warning("export taken over or deleted; stopping", extra={"export_id": job.id})
            outcome = Outcome.LOST
        except ExportFailed as exc:
            await self.fail(job.id, job.requested_by, str(exc))
            outcome = Outcome.FAILED
        except StorageError as exc:
            await self.fail(job.id, job.requested_by, f"storage failed: {exc}")
            outcome = Outcome.FAILED
        except (asyncpg.PostgresError, OSError) as exc:
            log.exception("export failed", extra={"export_id": job.id})
            await self.fail(job.id, job.requested_by, f"{exc.__class__.__name__}: {exc}")
            outcome = Outcome.FAILED
        except asyncio.CancelledError:
            await asyncio.shield(self.pg.fetchval(Q["hand_back"], job.id, self.owner))
            log.info("shutting down: export handed back", extra={"export_id": job.id})
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            metrics.RUNNING.dec()
        metrics.EXPORTS.labels(job.format.value, outcome.value).inc()
        return outcome

    async def _produce(self, job: ExportJob, progress: Progress, started: float) -> Outcome:
        spool = Path(self.config.spool_dir or tempfile.gettempdir())
        await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
        path = spool / f"jobdeck-export-{job.id}-{job.attempt}.{job.format.extension}"
        try:
            rows = await self._write_file(job, path, progress)
            size = (await asyncio.to_thread(path.stat)).st_size
            key = job.storage_key()
            await self.storage.put(key, path, job.format.content_type, job.filename)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        expires_at = datetime.now(UTC) + timedelta(seconds=self.config.retention_s)
        url = await self.storage.url(key, job.filename, expires_at)
        finished = await self.pg.fetchval(
            Q["finish"], job.id, self.owner, rows, size, key, url, expires_at
        )
        if finished is None:
            await self.storage.delete(key)
            raise LeaseLost
        elapsed = time.perf_counter() - started
        fmt = job.format.value
        metrics.ROWS.labels(fmt).inc(rows)
        metrics.BYTES.labels(fmt).inc(size)
        metrics.SECONDS.labels(fmt).observe(elapsed)
        metrics.ROWS_PER_SECOND.labels(fmt).set(rows / elapsed if elapsed > 0 else 0)
        log.info(
            "export done",
            extra={"export_id": job.id, "format": fmt, "rows": rows, "bytes": size,
                   "seconds": round(elapsed, 3), "by": job.requested_by},
        )  # fmt: skip
        await self._announce(
            job.id,
            ExportStatus.DONE,
            export_event(
                EventType.EXPORT_COMPLETED, job.id, job.requested_by, rows=rows, bytes=size,
                url=url, format=fmt, filename=job.filename,
                expires_at=int(expires_at.timestamp() * 1000),
            ),
        )  # fmt: skip
        return Outcome.DONE

    async def _write_file(self, job: ExportJob, path: Path, progress: Progress) -> int:
        """The file, from one snapshot; returns its row count."""
        async with (
            self.pg.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            reader = SnapshotReader(conn, job)
            total = await reader.count()
            if total > self.config.max_rows:
                raise ExportFailed(
                    f"the filters match {total:,} jobs, more than the limit of"
                    f" {self.config.max_rows:,} a single export may hold; narrow them"
                )
            progress.estimated = total
            ticker = _Ticker(self.config.progress_interval_ms / 1000)
            if job.format is ExportFormat.EXCEL:
                await self._write_excel(job, reader, path, total, progress, ticker)
            else:
                await self._write_text(job, reader, path, progress, ticker)
            if progress.lost:
                raise LeaseLost
        return progress.rows_done

    async def _write_text(
        self,
        job: ExportJob,
        reader: SnapshotReader,
        path: Path,
        progress: Progress,
        ticker: _Ticker,
    ) -> None:
        """CSV, JSON or NDJSON, made by Postgres (COPY) and written as it comes."""
        writer = await asyncio.to_thread(TextFile, path, job.format, job.layout)
        try:

            async def sink(data: bytes) -> None:
                writer.write(data)  # into the page cache: no thread hop
                await self._advance(job, progress, data, ticker)

            progress.rows_done = await reader.copy_rows(sink)
        except BaseException:
            writer.close()
            raise
        await asyncio.to_thread(writer.finish, progress.rows_done)

    async def _write_excel(
        self,
        job: ExportJob,
        reader: SnapshotReader,
        path: Path,
        total: int,
        progress: Progress,
        ticker: _Ticker,
    ) -> None:
        """The workbook: its Summary from the snapshot first, then its rows streamed in
        (made by Postgres, compressed by a thread of their own)."""
        summary = await reader.summary(datetime.now(UTC), total)
        if job.include_logs:
            summary.log_lines = await reader.log_count()
        writer = await asyncio.to_thread(
            ExcelWriter, path, job.layout, summary, total, summary.log_lines
        )
        pipe = ThreadPipe()
        try:

            async def rows(data: bytes) -> None:
                await pipe.put(writer.write_jobs, data)
                await self._advance(job, progress, data, ticker)

            async def logs(data: bytes) -> None:
                await pipe.put(writer.write_logs, data)

            style, per_sheet = writer.date_style, excel.SHEET_ROWS
            progress.rows_done = await reader.copy_sheet_rows(style, per_sheet, rows)
            if job.include_logs:
                await reader.copy_log_rows(style, per_sheet, logs)
            await pipe.close()
            await asyncio.to_thread(writer.close)
        except BaseException as exc:
            await pipe.close(discard=True)
            await asyncio.to_thread(writer.abort)
            if isinstance(exc, SheetTooLarge):
                raise ExportFailed(str(exc)) from exc
            raise

    async def _advance(
        self, job: ExportJob, progress: Progress, data: bytes, ticker: _Ticker
    ) -> None:
        """Count the rows (lines) of a COPY block, for progress only (a quoted line break in
        a CSV cell counts one more). A block is what one socket read brought (at most 256 KiB):
        the first event comes after the first block, well before the end of a large file."""
        progress.rows_done = min(progress.estimated or 0, progress.rows_done + data.count(b"\n"))
        if progress.rows_done and ticker.due():
            await self._progress_event(job, progress)

    async def _progress_event(self, job: ExportJob, progress: Progress) -> None:
        event = export_event(
            EventType.EXPORT_PROGRESS,
            job.id,
            job.requested_by,
            rows_done=progress.rows_done,
            rows_estimated=progress.estimated,
        )
        with contextlib.suppress(RedisError, OSError):
            await self.events.publish(event)

    async def _keep_lease(
        self,
        job: ExportJob,
        progress: Progress,
        keepalive: Callable[[], Awaitable[None]] | None,
    ) -> None:
        """Renew the lease (and record progress) at a third of its length, until cancelled."""
        every = self.config.lease_ms / 3000
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await self.pg.fetchval(
                    Q["renew"],
                    job.id,
                    self.owner,
                    self.config.lease_ms,
                    progress.rows_done,
                    progress.estimated,
                )
                if keepalive is not None:
                    await keepalive()
            except (asyncpg.PostgresError, OSError, RedisError) as exc:
                log.warning("lease renewal failed", extra={"export_id": job.id, "error": repr(exc)})
                continue
            if renewed is None:
                progress.lost = True
                return

    async def fail(self, export_id: str, by: str, reason: str) -> None:
        """Mark the export failed with ``reason`` (kept as long as a finished export)."""
        log.warning("export failed", extra={"export_id": export_id, "reason": reason})
        await self.pg.fetchval(Q["fail"], export_id, self.owner, reason, self.config.retention_s)
        event = export_event(EventType.EXPORT_FAILED, export_id, by, error=reason)
        await self._announce(export_id, ExportStatus.FAILED, event)

    async def _announce(self, export_id: str, status: ExportStatus, event: Any) -> None:
        """Wake the API request waiting on this export, and tell the requester's sockets."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpush(done_key(export_id), status.value)
                pipe.expire(done_key(export_id), DONE_TTL_S)
                self.events.add_to(pipe, event)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not announce export end", extra={"export_id": export_id,
                                                                 "error": repr(exc)})  # fmt: skip
