"""The Redis stream ``jobdeck:events`` that carries every event between services.

Entries hold one msgpack-encoded event under field ``e``. The stream is capped
(approximately) at ``Settings.stream_maxlen`` entries; consumers that fall further
behind than that lose the oldest events, which the recorder's lag metric warns about.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from jobdeck.events import Event, encode

EVENTS = "jobdeck:events"
DEAD_LETTERS = "jobdeck:events:dead"
EVENT_FIELD = b"e"
DEAD_LETTER_MAXLEN = 100_000


class EventStream:
    """Publishes events to the stream, alone or inside a caller's pipeline."""

    def __init__(self, redis: Redis, maxlen: int) -> None:
        self.redis = redis
        self.maxlen = maxlen

    def add_to(self, pipe: Pipeline, event: Event) -> None:
        pipe.xadd(EVENTS, {EVENT_FIELD: encode(event)}, maxlen=self.maxlen, approximate=True)

    async def publish(self, event: Event) -> str:
        entry_id = await self.redis.xadd(
            EVENTS, {EVENT_FIELD: encode(event)}, maxlen=self.maxlen, approximate=True
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def publish_many(self, events: Iterable[Event]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                self.add_to(pipe, event)
            await pipe.execute()


async def dead_letter(redis: Redis, entry_id: str, raw: Any, reason: str) -> None:
    """Keep a malformed entry aside, with why it was refused, for an operator to inspect."""
    payload = raw if isinstance(raw, bytes) else repr(raw).encode()
    await redis.xadd(
        DEAD_LETTERS,
        {b"id": entry_id.encode(), b"raw": payload, b"reason": reason.encode()},
        maxlen=DEAD_LETTER_MAXLEN,
        approximate=True,
    )
