"""The engine.io server under the gateway, changed so that memory a flood of sessions
took is given back once the flood is over.

Two things kept it: python-engineio's service task walks a *copy* of its session dict,
pausing between sessions so that one walk lasts a ping timeout, so every session open
when a walk starts — closed ones too, with their queues and unsent packets — stays
reachable until the walk ends (on a busy loop, long after the join deadline closed it);
and the tables keyed by session (here and in the layers above) keep the size of their
peak, since a dict never shrinks when entries are deleted. This server walks session
ids instead, and at the end of a walk, if at least ``COMPACT_MIN_CLOSED`` sessions and a
quarter of the peak have gone since the peak, it *compacts* (and once more a walk later,
for what the flood's tail freed meanwhile): the session tables are rebuilt at their
present size, the per-address handshake buckets that carry no state are dropped (the
``after_flood`` hooks), a full garbage collection runs, and glibc is asked to hand free
pages back to the system (``malloc_trim``; the gateway runs on the C allocator for this,
see ``__main__``). A walk lasts a ping timeout, so that is at most once per ping
timeout, and it costs one pass over the live sessions and one collection.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

import engineio

from jobdeck_gateway import metrics

log = logging.getLogger(__name__)

# Fewer sessions gone since the peak leave too little behind to be worth a compaction.
COMPACT_MIN_CLOSED = 100


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


class CompactingEngine(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's asyncio server with the session walk and compaction above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peak_sessions = 0
        self._tail_due = False
        self.after_flood: list[Callable[[], None]] = []

    async def _handle_connect(self, environ: Any, transport: str, jsonp_index: Any = None) -> Any:
        self.peak_sessions = max(self.peak_sessions, len(self.sockets) + 1)
        return await super()._handle_connect(environ, transport, jsonp_index)

    async def _service_task(self) -> None:
        """Close sessions whose client stopped answering pings: one walk over the session
        ids per ping timeout, holding no session between two steps; then compact if
        enough sessions have gone."""
        self.service_task_event = stop = self.create_event()
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                sids = list(self.sockets)
                pause = self.ping_timeout / max(1, len(sids))
                for sid in sids:
                    await self._check(sid)
                    if (await asyncio.wait({stopped}, timeout=pause))[0]:
                        return
                gone = self._flood_gone()
                if gone or self._tail_due:
                    self.compact()
                    self._tail_due = gone
                if not sids:
                    await asyncio.wait({stopped}, timeout=self.ping_timeout)
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
