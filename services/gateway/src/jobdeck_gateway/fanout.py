"""Read the whole event stream and hand each event to the clients allowed to see it.

Every replica reads ``jobdeck:events`` itself with XREAD (no consumer group), starting
from the stream's end at start-up; nothing is shared between replicas in memory.

Hand-off is synchronous and never waits on a client: each socket.io packet is encoded
once per event and put on every recipient's engine.io outgoing queue, whose writer task
sends it. A client whose queue is already ``client_queue_limit`` deep is slow or gone:
its messages are dropped (counted) and, once it catches up, it gets ``eventsDropped``
with the range it missed so it can ``resume``.

Resume is gap-free without a buffer: a held client receives nothing live; the replay
reads the stream up to where the live reader is, and the switch to live happens in the
same synchronous step as the check that the replay has caught up with the reader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import socketio
from engineio import packet as eio_packet
from jobdeck.events import Event, MalformedEvent, decode
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from socketio import packet as sio_packet

from jobdeck_gateway import metrics, wire
from jobdeck_gateway.protocol import (
    NAMESPACE,
    Outgoing,
    SocketEvent,
    beyond_stream_end,
    outgoing,
    parse_event_id,
)
from jobdeck_gateway.rooms import Client, Subscriptions

log = logging.getLogger(__name__)


class Encoded:
    """One outgoing message: a websocket frame, or (polling clients) an engine.io packet.

    The packet is built only if a client needs the queue path: most never do.
    """

    __slots__ = ("_packet", "frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.frame = wire.text_frame(b"4" + text.encode())
        self._packet: eio_packet.Packet | None = None

    @property
    def packet(self) -> eio_packet.Packet:
        if self._packet is None:
            self._packet = eio_packet.Packet(eio_packet.MESSAGE, self.text)
        return self._packet


REPLAY_PAGE = 500
_ENTRIES_OK = metrics.STREAM_ENTRIES.labels("ok")  # counted per entry: looked up once
YIELD_EVERY = 100  # stream entries dispatched between two yields to the event loop
ZERO_ID = "0-0"


class Fanout:
    """The stream reader and the per-client delivery of one replica."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        subs: Subscriptions,
        redis: Redis,
        queue_limit: int,
        read_batch: int = 1000,
        buffer_limit: int = 1 << 20,
        flush_interval: float = 0.0,
    ) -> None:
        self.sio = sio
        self.subs = subs
        self.redis = redis
        self.queue_limit = queue_limit
        self.read_batch = read_batch
        self.buffer_limit = buffer_limit
        self.flush_interval = flush_interval
        self._dirty: list[Client] = []
        self._flush_scheduled = False
        self.last_id = ZERO_ID
        self._last_tuple = (0, 0)
        self._emitted = {e: metrics.EVENTS_EMITTED.labels(str(e)) for e in SocketEvent}

    # -- encoding and hand-off ------------------------------------------------------

    def encode(self, name: SocketEvent, payload: dict[str, Any]) -> Encoded:
        """One message, encoded once per event and shared by every recipient."""
        pkt = self.sio.packet_class(sio_packet.EVENT, namespace=NAMESPACE, data=[name, payload])
        return Encoded(pkt.encode())

    def deliver(self, client: Client, items: Sequence[Encoded], first_id: str) -> bool:
        """Hand ``items`` to ``client`` without waiting; False if dropped (client too slow)."""
        sock = client.socket
        if sock is None or sock.closed:
            return False
        transport = client.transport or wire.fast_transport(sock)
        if transport is not None:
            client.transport = transport  # once on the fast path, always on it
            return self._deliver_frames(client, transport, items, first_id)
        queue: asyncio.Queue[Any] = sock.queue
        packets = [item.packet for item in items]
        if queue.qsize() + len(packets) > self.queue_limit:
            self._drop(client, len(packets), first_id)
            return False
        if client.dropped and queue.qsize() < self.queue_limit // 2:
            notice = self._notice(client)
            queue.put_nowait(self.encode(SocketEvent.EVENTS_DROPPED, notice).packet)
            self._emitted[SocketEvent.EVENTS_DROPPED].inc()
        for p in packets:
            queue.put_nowait(p)
        return True

    def _deliver_frames(
        self, client: Client, transport: Any, items: Sequence[Encoded], first_id: str
    ) -> bool:
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() + client.pending_bytes > self.buffer_limit:
            self._drop(client, len(items), first_id)
            return False
        if client.dropped:
            self._append(client, self.encode(SocketEvent.EVENTS_DROPPED, self._notice(client)))
            self._emitted[SocketEvent.EVENTS_DROPPED].inc()
        for item in items:
            self._append(client, item)
        return True

    def _append(self, client: Client, item: Encoded) -> None:
        if not client.pending:
            self._dirty.append(client)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._schedule_flush()
        client.pending.append(item.frame)
        client.pending_bytes += len(item.frame)

    def _schedule_flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self.flush_interval > 0:
            loop.call_later(self.flush_interval, self.flush)
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every client's pending frames, one ``transport.write`` per client."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            frames = client.pending
            transport = client.transport
            sock = client.socket
            if frames and transport is not None and not transport.is_closing() and not sock.closed:
                transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            frames.clear()  # reused: a fresh list per flush would feed the cyclic GC
            client.pending_bytes = 0

    def _drop(self, client: Client, count: int, first_id: str) -> None:
        client.dropped += count
        client.dropped_from = client.dropped_from or first_id
        client.dropped_to = first_id
        metrics.DROPPED.inc(count)

    @staticmethod
    def _notice(client: Client) -> dict[str, Any]:
        notice = {
            "count": client.dropped,
            "fromEventId": client.dropped_from,
            "toEventId": client.dropped_to,
        }
        client.dropped, client.dropped_from, client.dropped_to = 0, None, None
        return notice

    def send(self, clients: Iterable[Client], name: SocketEvent, payload: dict[str, Any]) -> int:
        """Send one event to ``clients`` (stats, notices); returns how many got it."""
        items: list[Encoded] | None = None
        sent = 0
        for client in clients:
            if client.held:
                continue
            if items is None:
                items = [self.encode(name, payload)]
            sent += self.deliver(client, items, self.last_id)
        if sent:
            self._emitted[name].inc(sent)
        return sent

    def dispatch(self, entry_id: str, event: Event) -> int:
        """Hand one live stream event to its recipients; returns how many clients got it."""
        out = outgoing(event, entry_id)
        if out.to_everyone:
            clients: Iterable[Client] = self.subs.everyone_seeing(out.queue)
        else:
            clients = self.subs.recipients(out.rooms, out.queue)
        if not clients:
            metrics.PUBLISH_TO_EMIT.observe(max(0.0, time.time() - event.ts / 1000))
            return 0
        items = [self.encode(name, payload) for name, payload in out.messages]
        frames = [item.frame for item in items]
        size = sum(len(f) for f in frames)
        limit = self.buffer_limit
        dirty = self._dirty
        sent = 0
        eid: tuple[int, int] | None = None
        for client in clients:
            transport = client.transport
            if transport is None or client.dropped or client.held or client.min_event_id:
                # the general path: polling, recovering, resuming or skipping clients
                if client.held:
                    continue
                if client.min_event_id is not None:
                    eid = eid or parse_event_id(entry_id)
                    if eid is not None and eid <= client.min_event_id:
                        continue
                    client.min_event_id = None
                sent += self.deliver(client, items, entry_id)
            elif transport.get_write_buffer_size() + client.pending_bytes > limit:
                self._drop(client, len(items), entry_id)
            else:  # the hot path: a live websocket client, inlined
                if not client.pending:
                    dirty.append(client)
                client.pending.extend(frames)
                client.pending_bytes += size
                sent += 1
        if dirty and not self._flush_scheduled:
            self._flush_scheduled = True
            self._schedule_flush()
        if sent:
            for name, _ in out.messages:
                self._emitted[name].inc(sent)
        metrics.PUBLISH_TO_EMIT.observe(max(0.0, time.time() - event.ts / 1000))
        return sent

    # -- the live reader -------------------------------------------------------------

    async def start_position(self) -> None:
        """Start at the stream's current end: a fresh replica sends only what comes next."""
        newest = await self.redis.xrevrange(EVENTS, count=1)
        if newest:
            self._advance(_str(newest[0][0]))

    def _advance(self, entry_id: str) -> None:
        self.last_id = entry_id
        parsed = parse_event_id(entry_id)
        if parsed is not None:
            self._last_tuple = parsed

    async def run(self) -> None:
        """XREAD forever; Redis hiccups are logged and retried, never fatal."""
        backoff = 0.1
        while True:
            try:
                response = await self.redis.xread(
                    {EVENTS: self.last_id}, count=self.read_batch, block=1000
                )
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("stream read failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for _stream, entries in response or ():
                for n, (raw_id, fields) in enumerate(entries, 1):
                    if n % YIELD_EVERY == 0:
                        # Let other tasks (stats ticks, client writers) run between slices of
                        # a big batch; every entry up to last_id is dispatched, so a resume
                        # that looks meanwhile still switches to live without a gap.
                        await asyncio.sleep(0)
                    entry_id = _str(raw_id)
                    event = _decode(entry_id, fields)
                    if event is not None:
                        try:
                            self.dispatch(entry_id, event)
                        except Exception:
                            log.exception("dispatch failed", extra={"event_id": entry_id})
                    self._advance(entry_id)

    # -- resume ------------------------------------------------------------------------

    async def resume(self, client: Client, from_id: str) -> dict[str, Any]:
        """Replay what ``client``'s rooms missed after ``from_id``, then go live; no gap."""
        start = parse_event_id(from_id)
        assert start is not None
        ids = await self.stream_ids()
        if ids is not None:
            refusal = beyond_stream_end(from_id, ids[0])
            if refusal is not None:  # checked before holding: a live client stays live
                return {"ok": False, "error": refusal, "code": "bad_request"}
        truncated = ids is not None and ids[1] > start
        client.held = True
        if start >= self._last_tuple:
            # The client saw more than this replica has read (another replica was ahead).
            client.min_event_id = start
            client.held = False
            return {"ok": True, "replayed": 0, "lastEventId": from_id, "truncated": truncated}
        cursor, replayed = from_id, 0
        while True:
            if client.sid not in self.subs.clients:
                return {"ok": False, "error": "disconnected"}
            target = self.last_id
            if parse_event_id(cursor) >= self._last_tuple:  # type: ignore[operator]
                client.held = False  # same synchronous step as the check: no gap, no dupes
                break
            page = await self.redis.xrange(EVENTS, min="(" + cursor, max=target, count=REPLAY_PAGE)
            for raw_id, fields in page:
                entry_id = _str(raw_id)
                event = _decode(entry_id, fields)
                if event is not None and self._visible_to(client, outgoing(event, entry_id)):
                    out = outgoing(event, entry_id)
                    items = [self.encode(name, payload) for name, payload in out.messages]
                    await self._deliver_patiently(client, items)
                    for name, _ in out.messages:
                        self._emitted[name].inc()
                    replayed += 1
            cursor = _str(page[-1][0]) if len(page) == REPLAY_PAGE else target
        metrics.REPLAYED.inc(replayed)
        return {"ok": True, "replayed": replayed, "lastEventId": cursor, "truncated": truncated}

    def _visible_to(self, client: Client, out: Outgoing) -> bool:
        if out.to_everyone:
            return out.queue == "*" or client.principal.can_see(out.queue)
        return self.subs.matches(client, out.rooms, out.queue)

    async def _deliver_patiently(self, client: Client, items: list[Encoded]) -> None:
        """Replay waits for a slow client instead of dropping (it asked for these events)."""
        sock = client.socket
        while sock is not None and not sock.closed:
            transport = client.transport or wire.fast_transport(sock)
            if transport is not None:
                client.transport = transport
                if transport.is_closing():
                    return
                if transport.get_write_buffer_size() + client.pending_bytes <= self.buffer_limit:
                    for item in items:
                        self._append(client, item)
                    return
            elif sock.queue.qsize() + len(items) <= self.queue_limit:
                for item in items:
                    sock.queue.put_nowait(item.packet)
                return
            await asyncio.sleep(0.01)

    async def stream_ids(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The stream's last generated id and its last trimmed id; None if Redis can't say.

        The first bounds what a client may resume from; entries after the second were
        trimmed away (a replay from before it cannot be complete).
        """
        try:
            info = await self.redis.xinfo_stream(EVENTS)
        except ResponseError:  # no stream yet: nothing was ever published
            return (0, 0), (0, 0)
        except (RedisError, OSError):
            return None
        last = parse_event_id(_str(info.get("last-generated-id") or ZERO_ID))
        deleted = parse_event_id(_str(info.get("max-deleted-entry-id") or ZERO_ID))
        return last or (0, 0), deleted or (0, 0)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(entry_id: str, fields: dict[Any, Any]) -> Event | None:
    raw = fields.get(EVENT_FIELD)
    if raw is None:
        raw = fields.get(EVENT_FIELD.decode())
    try:
        event = decode(raw if isinstance(raw, bytes) else b"")
    except MalformedEvent as exc:
        metrics.STREAM_ENTRIES.labels("malformed").inc()
        log.debug("skipping malformed entry", extra={"event_id": entry_id, "reason": str(exc)})
        return None
    _ENTRIES_OK.inc()
    return event
