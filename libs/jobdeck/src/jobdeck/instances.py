"""Which service instances are alive: each process announces itself in Redis every few seconds.

Sorted set ``jobdeck:instances`` (member: instance id, score: expiry in epoch ms) and hash
``jobdeck:instances:info`` (instance → JSON ``{service, host, pid, startedAt}``), the
same shape as the workers' registry. An instance that stops announcing expires; readers
skip expired entries and prune them, so a crashed replica disappears on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobdeck.events import now_ms
from jobdeck.web import REDIS, SETTINGS

log = logging.getLogger(__name__)

INSTANCES = "jobdeck:instances"
INSTANCES_INFO = "jobdeck:instances:info"
ANNOUNCE_INTERVAL_S = 5.0
ANNOUNCE_TTL_MS = 15_000


@dataclass(frozen=True)
class Instance:
    instance: str
    service: str
    host: str
    pid: int
    started_at: int
    expires_at: int


async def announce(redis: Redis, instance: str, info: dict[str, Any]) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(INSTANCES, {instance: now_ms() + ANNOUNCE_TTL_MS})
        pipe.hset(INSTANCES_INFO, instance, json.dumps(info))
        await pipe.execute()


async def withdraw(redis: Redis, instance: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(INSTANCES, instance)
        pipe.hdel(INSTANCES_INFO, instance)
        await pipe.execute()


async def seen_instances(redis: Redis) -> list[Instance]:
    """Live instances, oldest first; expired entries are pruned on the way."""
    now = now_ms()
    expired = await redis.zrangebyscore(INSTANCES, "-inf", now)
    if expired:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(INSTANCES, *expired)
            pipe.hdel(INSTANCES_INFO, *expired)
            await pipe.execute()
    members = await redis.zrangebyscore(INSTANCES, now, "+inf", withscores=True)
    if not members:
        return []
    infos = await redis.hmget(INSTANCES_INFO, [m for m, _ in members])  # type: ignore[misc]
    found = []
    for (member, score), raw in zip(members, infos, strict=True):
        try:
            info = json.loads(raw) if raw else {}
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        found.append(
            Instance(
                instance=member.decode() if isinstance(member, bytes) else str(member),
                service=str(info.get("service", "")),
                host=str(info.get("host", "")),
                pid=int(info.get("pid") or 0),
                started_at=int(info.get("startedAt") or 0),
                expires_at=int(score),
            )
        )
    return sorted(found, key=lambda i: (i.service, i.started_at, i.instance))


def use_presence(app: web.Application, service: str) -> None:
    """Announce this process as an instance of ``service`` while the app runs."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        redis = app[REDIS]
        host = socket.gethostname()
        # The host too: a default instance name is "<service>-<pid>", and every container's
        # main process may have the same pid.
        instance = f"{host}/{app[SETTINGS].instance}"
        info = {
            "service": service,
            "host": host,
            "pid": os.getpid(),
            "startedAt": now_ms(),
        }

        async def beat() -> None:
            try:
                await announce(redis, instance, info)
            except (RedisError, OSError) as exc:  # Redis down: readiness says so already
                log.debug("presence not announced", extra={"error": repr(exc)})

        async def loop() -> None:
            while True:
                await asyncio.sleep(ANNOUNCE_INTERVAL_S)
                await beat()

        await beat()  # seen from the moment the service serves
        task = asyncio.create_task(loop(), name="presence")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(RedisError, OSError):
            await withdraw(redis, instance)

    app.cleanup_ctx.append(ctx)
