"""A short-lived Redis cache of analytics answers, keyed by the caller's queue scope.

The key hashes the endpoint, the effective queue list (the request's queues cut down to
the token's, or ``*`` for a token that sees every queue) and every other parameter, so a
cached answer is only ever served to a caller who would compute the very same numbers.
Redis being down only costs the cache: the answer is computed and served uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PREFIX = "jobdeck:analytics:"
TTL_S = 15.0

M = TypeVar("M", bound=BaseModel)


def cache_key(endpoint: str, queues: list[str] | None, params: dict[str, Any]) -> str:
    scope = "*" if queues is None else sorted(queues)
    doc = json.dumps({"scope": scope, "params": params}, sort_keys=True, default=str)
    return f"{PREFIX}{endpoint}:{hashlib.sha256(doc.encode()).hexdigest()[:32]}"


async def cached(
    redis: Redis,
    key: str,
    build: Callable[[], Awaitable[M]],
    mark: Callable[[M, bool], None],
    ttl_s: float = TTL_S,
) -> M | web.Response:
    """The cached answer as stored (JSON, served without parsing), or a fresh one.

    ``mark`` flags a model as served from the cache or not: the stored copy says it is,
    so a hit needs no rewriting; the fresh answer says it is not.
    """
    try:
        raw = await redis.get(key)
    except (RedisError, OSError) as exc:
        log.warning("analytics cache unavailable", extra={"error": repr(exc)})
        raw = None
    if raw is not None:
        return web.Response(body=raw, content_type="application/json")
    fresh = await build()
    mark(fresh, True)
    stored = fresh.model_dump_json(by_alias=True)
    mark(fresh, False)
    try:
        await redis.set(key, stored, px=int(ttl_s * 1000))
    except (RedisError, OSError) as exc:
        log.warning("analytics cache unavailable", extra={"error": repr(exc)})
    return fresh
