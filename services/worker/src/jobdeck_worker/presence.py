"""The worker registry other services read to show live workers (the API's "busy" page).

Zset ``jobdeck:workers`` (member: instance id, score: expiry in epoch ms) and hash
``jobdeck:workers:info`` (instance → JSON ``{queues, concurrency, active, host, pid,
started_at, beat_at, per_queue, jobs}``; ``jobs`` lists the running job ids with their
queue, attempt token and start time). A worker that dies stops renewing and expires; any
worker prunes expired entries of others. Written from the housekeeping thread, so a task
blocking the event loop does not make its worker look dead.
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

from jobdeck_worker.queue_worker import QueueWorker

_PRUNE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
return #expired
"""


def worker_info(workers: Mapping[str, QueueWorker], started_at: int) -> dict[str, Any]:
    """What this process is doing now (safe to call from another thread: copies only)."""
    per_queue = {
        name: {"concurrency": w.max_jobs, "active": w.running, "paused": w.paused}
        for name, w in workers.items()
    }
    jobs = [
        {"id": job_id, "queue": name, "started_at": run.started_at, "run": run.claimed.runs}
        for name, w in workers.items()
        for job_id, run in w.runs.copy().items()
    ]
    return {
        "queues": list(workers),
        "concurrency": sum(w.max_jobs for w in workers.values()),
        "active": sum(w.running for w in workers.values()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started_at,
        "beat_at": now_ms(),
        "per_queue": per_queue,
        "jobs": jobs,
    }


class Presence:
    def __init__(
        self, redis: Redis, instance: str, workers: Mapping[str, QueueWorker], ttl_s: float
    ) -> None:
        self.redis = redis
        self.instance = instance
        self.workers = workers
        self.ttl_ms = int(ttl_s * 1000)
        self.started_at = now_ms()
        self._prune = redis.register_script(_PRUNE)

    async def beat(self) -> None:
        info = worker_info(self.workers, self.started_at)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(WORKERS, {self.instance: info["beat_at"] + self.ttl_ms})
            pipe.hset(WORKERS_INFO, self.instance, json.dumps(info))
            await pipe.execute()

    async def prune(self) -> int:
        """Drop workers whose last beat expired (atomically: one may be renewing right now)."""
        return int(await self._prune(keys=[WORKERS, WORKERS_INFO], args=[now_ms()]))

    async def leave(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(WORKERS, self.instance)
            pipe.hdel(WORKERS_INFO, self.instance)
            await pipe.execute()
