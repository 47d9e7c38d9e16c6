"""A pipe from the event loop to one worker thread, for blocking work on a byte stream.

Postgres makes an Excel export's rows while this thread compresses the ones before: two
cores at work, and the event loop (lease renewals, progress) never blocked. At most
``depth`` blocks wait; a full pipe makes the producer wait for the thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

Work = tuple[Callable[[bytes], None], bytes]


class ThreadPipe:
    def __init__(self, depth: int = 16) -> None:
        self._queue: queue.Queue[Work | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._discard = False
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            if self._error is not None or self._discard:
                continue  # drain, so that the producer never waits on a dead consumer
            consume, block = work
            try:
                consume(block)
            except BaseException as exc:  # re-raised in the event loop by put() or close()
                self._error = exc

    async def put(self, consume: Callable[[bytes], None], block: bytes) -> None:
        """Have the thread call ``consume(block)``, after the blocks before it. Once a call
        has failed, blocks are dropped: ``close`` raises the error. (Raising here, inside an
        asyncpg COPY's sink, would leave asyncpg waiting on the COPY's cancellation.)"""
        if self._error is not None:
            return
        try:
            self._queue.put_nowait((consume, block))
        except queue.Full:
            await asyncio.to_thread(self._queue.put, (consume, block))

    async def close(self, discard: bool = False) -> None:
        """Wait for the thread to finish the blocks handed over (``discard``: to drop them);
        raises what a call raised, unless discarding."""
        self._discard = discard
        await asyncio.to_thread(self._stop)
        if self._error is not None and not discard:
            raise self._error

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
