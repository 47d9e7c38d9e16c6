"""The worker registry other services read to show live workers.

Zset ``jobdeck:workers`` (member: instance id, score: expiry in epoch ms) and hash
``jobdeck:workers:info`` (instance → JSON ``{queues, concurrency, active, host, pid,
started_at, per_queue}``). A worker that dies stops renewing and expires; any worker prunes
expired entries of others.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from jobdeck.events import now_ms
from jobdeck.queues import WORKERS, WORKERS_INFO
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from jobdeck_worker.worker import JobdeckWorker

_PRUNE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
return #expired
"""


def worker_info(workers: Mapping[str, JobdeckWorker], started_at: int) -> dict[str, Any]:
    per_queue = {
        name: {"concurrency": w.max_jobs, "active": w.running, "paused": w.paused}
        for name, w in workers.items()
    }
    return {
        "queues": list(workers),
        "concurrency": sum(w.max_jobs for w in workers.values()),
        "active": sum(w.running for w in workers.values()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started_at,
        "per_queue": per_queue,
    }


class Presence:
    def __init__(
        self, redis: Redis, instance: str, workers: Mapping[str, JobdeckWorker], ttl_s: float
    ) -> None:
        self.redis = redis
        self.instance = instance
        self.workers = workers
        self.ttl_ms = int(ttl_s * 1000)
        self.started_at = now_ms()
        self._prune = redis.register_script(_PRUNE)

    def beat(self, pipe: Pipeline) -> None:
        now = now_ms()
        pipe.zadd(WORKERS, {self.instance: now + self.ttl_ms})
        pipe.hset(
            WORKERS_INFO, self.instance, json.dumps(worker_info(self.workers, self.started_at))
        )

    async def prune(self) -> int:
        """Drop workers whose last beat expired (atomically: one may be renewing right now)."""
        return int(await self._prune(keys=[WORKERS, WORKERS_INFO], args=[now_ms()]))

    async def leave(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(WORKERS, self.instance)
            pipe.hdel(WORKERS_INFO, self.instance)
            await pipe.execute()
