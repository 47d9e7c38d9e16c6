"""The engine.io server under the gateway, changed so that memory a flood of sessions
took is given back once the flood is over.

Three things kept it: every session has a task that sleeps a ping interval and then pings
it (python-engineio's ``AsyncSocket._send_ping``, started at the handshake and after each
answered ping), and that task held the session — closed ones too, with their queues — for
up to a ping interval (25 s) after the handshake, 15 s past the join deadline that closed
it, so a compaction run when the session tables emptied found the memory still in use;
python-engineio's service task walks a *copy* of its session dict, pausing between
sessions so that one walk lasts a ping timeout, so every session open when a walk starts
stays reachable until the walk ends; and the tables keyed by session (here and in the
layers above) keep the size of their peak, since a dict never shrinks when entries are
deleted. Here the next ping is a timer holding its session weakly (a closed session is
freed at once), the service task walks session ids instead, and at the end of a walk, if
at least ``COMPACT_MIN_CLOSED`` sessions and a quarter of the peak have gone since the
peak, it *compacts* — and once more at the end of the first walk a ping interval after
the last handshake before that, when the ping timers of the flood's sessions (a few
hundred bytes each, spread over the pages the flood took) have fired: the session tables
are rebuilt at their present size, the per-address handshake buckets that carry no state
are dropped (the ``after_flood`` hooks), a full garbage collection runs, and glibc is
asked to hand free pages back to the system (``malloc_trim``; the gateway runs on the C
allocator for this, see ``__main__``). A walk lasts a ping timeout, so that is at most
once per ping timeout, and it costs one pass over the live sessions and one collection.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any

import engineio
from engineio import packet
from engineio.async_socket import AsyncSocket

from jobdeck_gateway import metrics

log = logging.getLogger(__name__)

# Fewer sessions gone since the peak leave too little behind to be worth a compaction.
COMPACT_MIN_CLOSED = 100
# Pauses in one walk over the sessions (it lasts a ping timeout whatever their number).
WALK_PAUSES = 200


def shrink(table: MutableMapping[Any, Any]) -> None:
    """Rebuild ``table`` in place at its present size (deletion never shrinks a dict)."""
    items = list(table.items())
    table.clear()
    table.update(items)


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


MALLOC_TRIM = _load_malloc_trim()


def ping_due(session: weakref.ref[AsyncSocket]) -> None:
    """``AsyncSocket._send_ping`` after its sleep, for a session held weakly meanwhile."""
    socket = session()
    if socket is not None and not socket.closing and not socket.closed:
        socket.last_ping = time.time()
        socket.server.start_background_task(socket.send, packet.Packet(packet.PING))


class CompactingEngine(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's asyncio server with the session walk and compaction above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peak_sessions = 0
        self._last_handshake = 0.0
        self._tail_due = False
        self._tail_at = 0.0
        self.after_flood: list[Callable[[], None]] = []

    async def _handle_connect(self, environ: Any, transport: str, jsonp_index: Any = None) -> Any:
        self.peak_sessions = max(self.peak_sessions, len(self.sockets) + 1)
        self._last_handshake = time.monotonic()
        return await super()._handle_connect(environ, transport, jsonp_index)

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """python-engineio's, except a session's next ping: a timer holding the session
        weakly instead of a task sleeping with it (a closed session is freed at once, and
        what waits for the ping takes ~0.7 KB a session instead of ~2 KB)."""
        owner = getattr(target, "__self__", None)
        if isinstance(owner, AsyncSocket) and target.__func__ is AsyncSocket._send_ping:
            loop = asyncio.get_running_loop()
            return loop.call_later(self.ping_interval, ping_due, weakref.ref(owner))
        return super().start_background_task(target, *args, **kwargs)

    async def _service_task(self) -> None:
        """Close sessions whose client stopped answering pings: one walk over the session
        ids per ping timeout, holding no session between two steps; then compact if
        enough sessions have gone."""
        self.service_task_event = stop = self.create_event()
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                sids = list(self.sockets)
                if not sids and (await asyncio.wait({stopped}, timeout=self.ping_timeout))[0]:
                    return
                # At most WALK_PAUSES pauses a walk: one pause per session (python-engineio's)
                # made a walk over 20,000 sessions last minutes on a busy loop.
                step = max(1, -(-len(sids) // WALK_PAUSES))
                pause = self.ping_timeout * step / max(1, len(sids))
                for start in range(0, len(sids), step):
                    for sid in sids[start : start + step]:
                        await self._check(sid)
                    if (await asyncio.wait({stopped}, timeout=pause))[0]:
                        return
                # The second compaction waits until the ping timers of every session
                # opened before the first have fired.
                gone = self._flood_gone()
                if gone or (self._tail_due and time.monotonic() >= self._tail_at):
                    self.compact()
                    self._tail_due = gone
                    self._tail_at = self._last_handshake + self.ping_interval
        finally:
            stopped.cancel()

    def _flood_gone(self) -> bool:
        """At least ``COMPACT_MIN_CLOSED`` sessions, and a quarter of the peak, have gone
        since the peak (ordinary reconnects of a large audience do not compact)."""
        gone = self.peak_sessions - len(self.sockets)
        return gone >= COMPACT_MIN_CLOSED and gone * 4 >= self.peak_sessions

    async def _check(self, sid: str) -> None:
        socket = self.sockets.get(sid)
        if socket is None:
            return
        if socket.closed:
            self.sockets.pop(sid, None)
        elif not socket.closing:
            await socket.check_ping_timeout()

    def compact(self) -> None:
        """Give back what the last peak of sessions left behind (see the module doc)."""
        peak, self.peak_sessions = self.peak_sessions, len(self.sockets)
        shrink(self.sockets)
        for hook in self.after_flood:
            hook()
        # A full collection also empties CPython's free lists (tuples, dicts, floats ...):
        # their blocks, spread over the heap, would keep its pages from being released.
        gc.collect()
        released = MALLOC_TRIM(0) if MALLOC_TRIM is not None else 0
        metrics.COMPACTIONS.inc()
        log.info(
            "compacted after a peak of sessions",
            extra={"peak": peak, "sessions": len(self.sockets), "released": bool(released)},
        )
