"""The recorder loop: read the event stream through a consumer group, write, then ack.

Delivery is at-least-once: entries are acknowledged only after their batch's transaction
commits, so a crash or a Postgres outage leaves them pending, to be retried here or
claimed by another recorder once they have been idle for ``claim_idle_ms``. Malformed
entries are dead-lettered, counted and acked; they never stop the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgpack
from jobdeck.events import Event, MalformedEvent, decode, now_ms
from jobdeck.lag import RECORDER_LAG_KEY, RecorderLag
from jobdeck.streams import DEAD_LETTERS, EVENT_FIELD, EVENTS, dead_letter
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from jobdeck_recorder import metrics
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.rollup_writer import write_rollups
from jobdeck_recorder.store import JobStore, StoreRejected, StoreUnavailable
from jobdeck_recorder.validate import InvalidField, check

log = logging.getLogger(__name__)

Entries = Sequence[tuple[bytes, dict[bytes, bytes] | None]]


@dataclass(frozen=True, slots=True)
class Refused:
    """A stream entry that is not a valid event, with why (for the dead-letter stream)."""

    entry_id: str
    raw: Any
    reason: str  # metric label: a small fixed set
    detail: str


@dataclass(frozen=True, slots=True)
class Decoded:
    entry_id: str
    raw: bytes
    event: Event


def malformed_reason(exc: MalformedEvent) -> str:
    """A metric label for why ``decode`` or ``check`` refused an entry."""
    if isinstance(exc, InvalidField):
        return "invalid_field"
    cause = exc.__cause__
    if cause is None:
        return "invalid_event"
    if isinstance(cause, msgpack.UnpackException | UnicodeError):
        return "not_msgpack"
    if isinstance(cause, ValueError):  # EventType(...) refused the type name
        return "unknown_type"
    return "not_msgpack"


@dataclass(frozen=True, slots=True)
class Batch:
    """Entries read together: every id (to ack), the events, and the refusals."""

    ids: list[bytes]
    good: list[Decoded]
    bad: list[Refused]


def decode_batch(entries: Entries) -> Batch:
    """Split raw stream entries into events and refusals; entries trimmed away are dropped."""
    good: list[Decoded] = []
    bad: list[Refused] = []
    for raw_id, entry_fields in entries:
        if not entry_fields:
            continue
        entry_id = raw_id.decode()
        raw = entry_fields.get(EVENT_FIELD)
        if raw is None:
            bad.append(Refused(entry_id, entry_fields, "no_payload", "entry has no field 'e'"))
            continue
        try:
            event = decode(raw)
            check(event)
        except MalformedEvent as exc:
            bad.append(Refused(entry_id, raw, malformed_reason(exc), str(exc)))
            continue
        good.append(Decoded(entry_id, raw, event))
    return Batch([raw_id for raw_id, _ in entries], good, bad)


async def _discard(task: asyncio.Task[Batch] | None) -> None:
    """Drop a read-ahead; whatever it had read stays pending and is read again."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


class _Stopped(Exception):
    """Stop was requested while a batch could not be completed; it stays pending."""


class Recorder:
    """Consumes ``jobdeck:events`` as one consumer of the ``recorder`` group."""

    def __init__(
        self,
        redis: Redis,
        pool: asyncpg.Pool,
        config: RecorderConfig,
        consumer: str,
        stream: str = EVENTS,
    ) -> None:
        self.redis = redis
        self.store = JobStore(pool, on_batch=write_rollups if config.rollups else None)
        self.config = config
        self.consumer = consumer
        self.stream = stream
        self.recorded = 0  # events committed and acked by this instance
        self.healthy = True  # false while Postgres or Redis keeps failing
        self.last_error: str | None = None
        self._stop = asyncio.Event()
        self._group_ready = False
        self._rate = _Rate()

    # -- lifecycle -------------------------------------------------------------------
    def stop(self) -> None:
        """Finish (and ack) the batch in hand, then return from ``run``."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Consume until ``stop``; never raises for Redis, Postgres or bad entries.

        The next batch is read (and decoded) while the current one is being written, so
        Redis, Python and Postgres work at the same time.
        """
        backlog = True  # first re-read what this consumer name left pending in a past life
        next_claim = 0.0
        delay = self._backoff()
        ahead: asyncio.Task[Batch] | None = None
        while not self.stopping:
            try:
                await self._ensure_group()
                if time.monotonic() >= next_claim:
                    await self.claim_stale()
                    next_claim = time.monotonic() + self.config.claim_interval_ms / 1000
                if ahead is not None:
                    batch, ahead = await ahead, None
                else:
                    batch = await self._fetch("0" if backlog else ">")
                if backlog and not batch.ids:
                    backlog = False
                    continue
                if batch.ids:
                    if not backlog:
                        ahead = asyncio.create_task(self._fetch(">"))
                    await self.process(batch)
                self._recovered()  # a read or a batch went through
                delay = self._backoff()
            except _Stopped:
                break
            except Exception as exc:
                if isinstance(exc, RedisError | OSError):
                    # Redis may have restarted empty (no persistence): stream and group
                    # gone. XGROUP CREATE again before anything else (BUSYGROUP if not).
                    self._group_ready = False
                    self._unhealthy("redis", exc)
                else:
                    log.exception("recorder loop error")
                    self._unhealthy("internal", exc)
                await _discard(ahead)
                ahead = None
                backlog = True  # what was read but not acked is retried from our own PEL
                await self._sleep(next(delay))
        if ahead is not None:  # entries already delivered to us: record them too
            with contextlib.suppress(Exception):
                await self.process(await ahead)
        log.info("recorder stopped", extra={"recorded": self.recorded})

    async def _fetch(self, start: str) -> Batch:
        return decode_batch(await self._read(start))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, self.config.group, id="0", mkstream=True)
            log.info("consumer group created", extra={"group": self.config.group})
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # redis reports this only as an error string
                raise
        self._group_ready = True

    async def _read(self, start: str) -> Entries:
        try:
            reply = await self.redis.xreadgroup(
                self.config.group,
                self.consumer,
                {self.stream: start},
                count=self.config.batch_size,
                block=None if start == "0" else self.config.block_ms,
            )
        except ResponseError:
            self._group_ready = False  # e.g. NOGROUP: stream or group deleted under us
            raise
        if not reply:
            return []
        entries: Entries = reply[0][1]
        return entries

    async def claim_stale(self) -> int:
        """Take over entries another consumer left pending longer than ``claim_idle_ms``."""
        claimed = 0
        start = "0-0"
        while not self.stopping:
            reply = await self.redis.xautoclaim(
                self.stream,
                self.config.group,
                self.consumer,
                self.config.claim_idle_ms,
                start,
                count=self.config.batch_size,
            )
            start_raw, entries = reply[0], reply[1]
            if entries:
                claimed += len(entries)
                metrics.CLAIMED.inc(len(entries))
                log.warning(
                    "claimed entries of a stalled consumer", extra={"entries": len(entries)}
                )
                await self.process(entries)
            start = start_raw.decode() if isinstance(start_raw, bytes) else str(start_raw)
            if start == "0-0":
                break
        await self._forget_idle_consumers()
        return claimed

    async def _forget_idle_consumers(self) -> None:
        """Remove consumers (dead recorders) that own nothing and have long been idle."""
        for info in await self.redis.xinfo_consumers(self.stream, self.config.group):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if (
                name != self.consumer
                and info["pending"] == 0
                and info["idle"] > self.config.consumer_expiry_ms
            ):
                await self.redis.xgroup_delconsumer(self.stream, self.config.group, name)

    # -- one batch -----------------------------------------------------------------------
    async def process(self, batch: Batch | Entries) -> None:
        """Record one batch of entries; returns once they are committed and acked."""
        started = time.perf_counter()
        if not isinstance(batch, Batch):
            batch = decode_batch(batch)
        job_events = [d for d in batch.good if d.event.job_id is not None]
        rejected = await self._write(job_events)
        refused = batch.bad + rejected
        for item in refused:
            log.warning(
                "malformed stream entry dead-lettered",
                extra={"entry_id": item.entry_id, "reason": item.reason, "detail": item.detail},
            )
        await self._retrying("redis", lambda: self._dead_letter(refused))
        ids = batch.ids
        if ids:
            await self._retrying(
                "redis", lambda: self.redis.xack(self.stream, self.config.group, *ids)
            )
        for item in refused:
            metrics.MALFORMED.labels(item.reason).inc()
        rejected_ids = {r.entry_id for r in rejected}
        by_type = Counter(str(d.event.type) for d in batch.good if d.entry_id not in rejected_ids)
        for etype, n in by_type.items():
            metrics.EVENTS.labels(etype).inc(n)
        count = len(batch.good) - len(rejected)
        self.recorded += count
        self._rate.add(count)
        metrics.BATCH_SIZE.observe(len(ids))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._recovered()

    async def _write(self, items: Sequence[Decoded]) -> list[Refused]:
        """Write the batch; if Postgres refuses a value, write event by event to isolate it."""
        if not items:
            return []
        try:
            await self._retrying("postgres", lambda: self._store(items))
            return []
        except StoreRejected as exc:
            log.warning(
                "batch refused by postgres; isolating the bad event", extra={"err": str(exc)}
            )
        rejected: list[Refused] = []
        for d in items:
            try:
                await self._retrying("postgres", lambda d=d: self._store([d]))
            except StoreRejected as exc:
                rejected.append(Refused(d.entry_id, d.raw, "rejected_by_postgres", str(exc)))
        return rejected

    async def _store(self, items: Sequence[Decoded]) -> None:
        result = await self.store.write([d.event for d in items], [d.entry_id for d in items])
        metrics.ROWS.labels("update").inc(result.updated)
        metrics.ROWS.labels("insert").inc(result.inserted)
        metrics.LOGS.inc(result.logs)
        if result.conflicts:
            log.warning(
                "events of another queue for an existing job id skipped",
                extra={"events": result.conflicts},
            )
            metrics.SKIPPED.labels("queue_conflict").inc(result.conflicts)

    async def _retrying(self, kind: str, op: Any) -> Any:
        """Run ``op`` until it succeeds, backing off while its backend is unavailable."""
        delay = self._backoff()
        while True:
            try:
                return await op()
            except (StoreUnavailable, RedisError, OSError) as exc:
                self._unhealthy(kind, exc)
                if self.stopping:
                    raise _Stopped() from exc
                await self._sleep(next(delay))
                if self.stopping:
                    raise _Stopped() from exc

    async def _dead_letter(self, refused: Sequence[Refused]) -> None:
        for item in refused:
            await dead_letter(self.redis, item.entry_id, item.raw, f"{item.reason}: {item.detail}")

    # -- health and lag --------------------------------------------------------------------
    def _unhealthy(self, kind: str, exc: BaseException) -> None:
        metrics.FAILURES.labels(kind).inc()
        message = f"{kind}: {exc}"
        if self.healthy or message != self.last_error:
            log.warning("recorder cannot proceed; will retry", extra={"error": message})
        self.healthy, self.last_error = False, message

    def _recovered(self) -> None:
        if not self.healthy:
            log.info("recorder recovered")
        self.healthy, self.last_error = True, None

    def _backoff(self) -> Any:
        def gen() -> Any:
            delay = self.config.backoff_min_ms / 1000
            while True:
                yield delay
                delay = min(delay * 2, self.config.backoff_max_ms / 1000)

        return gen()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def lag(self) -> RecorderLag:
        """The group's position now (XINFO GROUPS), and this instance's recent rate."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xinfo_groups(self.stream)
            pipe.xlen(self.stream)
            groups, length = await pipe.execute()
        group = next((g for g in groups if _text(g["name"]) == self.config.group), None)
        lag: int | None
        if group is None:  # nothing consumed yet: everything in the stream is lag
            lag, pending, consumers, last_id = int(length), 0, 0, "0-0"
        else:
            raw_lag = group.get("lag")
            lag = None if raw_lag is None else int(raw_lag)
            pending, consumers = int(group["pending"]), int(group["consumers"])
            last_id = _text(group["last-delivered-id"])
        return RecorderLag(
            lag=lag,
            pending=pending,
            consumers=consumers,
            last_delivered_id=last_id,
            stream_length=int(length),
            events_per_s=round(self._rate.per_second(), 1),
            updated_at=now_ms(),
            instance=self.consumer,
        )

    async def publish_lag(self) -> RecorderLag:
        """Refresh the gauges and the Redis key the gateway reads."""
        lag = await self.lag()
        metrics.LAG.set(float("nan") if lag.lag is None else lag.lag)
        metrics.PENDING.set(lag.pending)
        metrics.EVENTS_PER_SECOND.set(lag.events_per_s)
        metrics.STREAM_LENGTH.set(lag.stream_length)
        metrics.DEAD_LETTERS.set(await self.redis.xlen(DEAD_LETTERS))
        await self.redis.set(RECORDER_LAG_KEY, lag.to_json(), ex=self.config.lag_ttl_s)
        return lag

    async def run_lag_reporter(self) -> None:
        """Publish the lag every ``lag_interval_ms`` until stopped."""
        while not self.stopping:
            try:
                await self.publish_lag()
            except (RedisError, OSError) as exc:
                log.debug("lag not published", extra={"error": str(exc)})
            await self._sleep(self.config.lag_interval_ms / 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Rate:
    """Events per second over the last ~10 seconds."""

    WINDOW_S = 10.0

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, count: int) -> None:
        self._samples.append((time.monotonic(), count))
        self._trim()

    def per_second(self) -> float:
        self._trim()
        return sum(n for _, n in self._samples) / self.WINDOW_S

    def _trim(self) -> None:
        cutoff = time.monotonic() - self.WINDOW_S
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()
