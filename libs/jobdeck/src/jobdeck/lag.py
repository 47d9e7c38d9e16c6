"""How far the recorder is behind the event stream, as it publishes it for other services.

The recorder refreshes ``RECORDER_LAG_KEY`` every second or so with a short TTL; the
gateway reads it into ``systemStats``. A missing key means no recorder is running.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

RECORDER_LAG_KEY = "jobdeck:recorder:lag"


@dataclass(frozen=True)
class RecorderLag:
    """The recorder consumer group's position in ``jobdeck:events``."""

    lag: int | None  # entries not yet delivered to the group; None when Redis cannot tell
    pending: int  # delivered to a recorder but not yet written and acknowledged
    consumers: int
    last_delivered_id: str
    stream_length: int
    events_per_s: float  # recorded per second by the instance that published this
    updated_at: int  # epoch ms
    instance: str = ""

    @property
    def behind(self) -> int:
        """Entries not yet in Postgres: undelivered plus unacknowledged."""
        return (self.lag if self.lag is not None else self.stream_length) + self.pending

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "behind": self.behind})

    @classmethod
    def from_json(cls, raw: str | bytes) -> RecorderLag:
        body: dict[str, Any] = json.loads(raw)
        body.pop("behind", None)
        return cls(**body)


async def read_recorder_lag(redis: Redis) -> RecorderLag | None:
    """The lag last published by a recorder, or None if none published it recently."""
    raw = await redis.get(RECORDER_LAG_KEY)
    if raw is None:
        return None
    try:
        return RecorderLag.from_json(raw)
    except (ValueError, TypeError):
        return None
