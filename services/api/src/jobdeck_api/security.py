"""Bearer-token authentication and per-caller rate limits, as aiohttp middlewares.

Authentication (PyJWT via ``jobdeck.auth.TokenVerifier``) puts a ``Principal`` on each
``/api/v1`` request or answers 401 with ``WWW-Authenticate: Bearer``; the route layer
checks roles. Rate limits use ``limits`` (moving window) on Redis, keyed by the token's
``sub``, with a stricter bucket for bulk operations; over the limit is a 429 with
``Retry-After``. Hits are reserved in Redis a few at a time (``LeasedLimiter``) rather
than one round trip per request. If Redis cannot answer, the request is let through (and
logged): a limiter outage must not take the API down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from jobdeck.auth import InvalidToken, Principal, TokenVerifier
from jobdeck.settings import ConfigError
from jobdeck.web import REDIS, SETTINGS, problem, request_id
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from jobdeck_api.routing import PRINCIPAL_KEY, Bucket, endpoint_of

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/api/docs",)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def unauthorized(request: web.Request, detail: str, missing: bool) -> web.Response:
    response = problem(401, detail, request_id=request_id(request))
    challenge = 'Bearer realm="jobdeck"'
    if not missing:
        safe = detail.replace('"', "'")
        challenge += f', error="invalid_token", error_description="{safe}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith("/api/") or path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    try:
        request[PRINCIPAL_KEY] = await request.app[TOKEN_CACHE].verify(token)
    except InvalidToken as exc:
        return unauthorized(request, str(exc), missing=token is None)
    return await handler(request)


class VerifiedTokens:
    """Remembers tokens already verified, until shortly before they expire: a dashboard
    sends the same token with every call, and checking its signature each time is the
    costliest step of authentication. Bounded; a forged token is never cached."""

    def __init__(self, verifier: TokenVerifier, size: int = 4096) -> None:
        self.verifier = verifier
        self.size = size
        self._known: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str | None) -> Principal:
        if token is not None:
            hit = self._known.get(token)
            if hit is not None and hit[1] > time.time():
                return hit[0]
        principal = await self.verifier.verify(token)
        assert token is not None and principal.expires_at is not None
        # Forgotten a little before its ``exp`` (already checked to be a bounded number).
        self._known[token] = (principal, principal.expires_at - 5)
        if len(self._known) > self.size:
            self._known.popitem(last=False)
        return principal


TOKEN_CACHE = web.AppKey("token_cache", VerifiedTokens)


OFF = "off"


@dataclass(frozen=True)
class RateLimits:
    """Per-caller limits, in the ``limits`` notation ("600/minute"); None turns a bucket off.

    ``JOBDECK_API_RATE_LIMIT`` and ``JOBDECK_API_BULK_RATE_LIMIT`` set them (``off``
    disables one); ``enabled=False`` disables both.
    """

    default: str | None = "1200/minute"
    bulk: str | None = "60/minute"
    enabled: bool = True
    items: dict[str, RateLimitItem | None] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # A malformed limit fails at startup, not as a 500 on the first request.
        for name, text in (("default", self.default), ("bulk", self.bulk)):
            if text is not None:
                parse_limit(f"{name} rate limit", text)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimits:
        values: dict[str, str | None] = {}
        for name, var in (
            ("default", "JOBDECK_API_RATE_LIMIT"),
            ("bulk", "JOBDECK_API_BULK_RATE_LIMIT"),
        ):
            raw = env.get(var)
            if raw is None:
                continue
            values[name] = None if raw.strip().lower() == OFF else raw.strip()
            if values[name] is not None:
                parse_limit(var, raw.strip())
        return cls(**values)  # type: ignore[arg-type]

    def item(self, bucket: str) -> RateLimitItem | None:
        """The bucket's limit, None when it is off."""
        if not self.enabled:
            return None
        if bucket not in self.items:
            text = self.bulk if bucket == Bucket.BULK else self.default
            self.items[bucket] = None if text is None else parse(text)
        return self.items[bucket]


def parse_limit(name: str, text: str) -> RateLimitItem:
    """One ``limits`` item of at least one hit, or a ConfigError naming ``name``."""
    accepts = (
        f"{name}={text!r}: accepts a limit such as 1200/minute "
        "(N per second, minute, hour or day), or off"
    )
    if any(sep in text for sep in ";,|"):
        raise ConfigError(accepts)
    try:
        item = parse(text)
    except ValueError:
        raise ConfigError(accepts) from None
    if item.amount < 1:
        raise ConfigError(accepts)
    return item


@dataclass
class _Lease:
    """Hits of one caller's bucket already counted in Redis, to spend before ``until``."""

    left: int = 0
    until: float = 0.0
    reserving: asyncio.Event | None = None


class LeasedLimiter:
    """``limits``' moving window in Redis, with hits reserved a few at a time.

    One Redis round trip (a Lua script) per request cost a search about a quarter of its
    CPU. Instead a process reserves up to ``max_chunk`` hits in one call (``cost=n``) and
    spends them locally for at most ``lease_s``; concurrent requests share one
    reservation. Redis counts every hit before it is spent, so no caller gets past its
    limit, however many API processes share it. The price, bounded: a reservation left
    unspent makes the limit stricter by up to ``max_chunk - 1`` hits for a moment, and a
    reserved hit is dated up to ``lease_s`` before its use. Limits under 100 a period
    reserve one hit at a time and so stay exact; near the limit, one at a time as well.
    """

    def __init__(
        self,
        limiter: MovingWindowRateLimiter,
        lease_s: float = 1.0,
        max_chunk: int = 20,
        max_callers: int = 10_000,
    ) -> None:
        self.limiter = limiter
        self.lease_s = lease_s
        self.max_chunk = max_chunk
        self.max_callers = max_callers
        self._leases: dict[tuple[str, str], _Lease] = {}

    def chunk(self, item: RateLimitItem) -> int:
        """Hits to reserve at once: a hundredth of the limit, 1 to ``max_chunk``."""
        return max(1, min(self.max_chunk, item.amount // 100))

    async def hit(self, item: RateLimitItem, bucket: str, caller: str) -> bool:
        """Spend one hit of ``caller``'s ``bucket``; False when over the limit."""
        key = (bucket, caller)
        while True:
            lease = self._leases.get(key)
            if lease is None:
                lease = self._leases[key] = _Lease()
            if lease.left > 0 and lease.until > time.monotonic():
                lease.left -= 1
                return True
            if lease.reserving is None:
                return await self._reserve(lease, item, bucket, caller)
            await lease.reserving.wait()  # another request is reserving: share its hits

    async def _reserve(self, lease: _Lease, item: RateLimitItem, bucket: str, caller: str) -> bool:
        """Reserve hits for this request and the next few; False when none is left."""
        lease.reserving = done = asyncio.Event()
        lease.left = 0
        try:
            until = time.monotonic() + self.lease_s
            cost = self.chunk(item)
            granted = await self.limiter.hit(item, bucket, caller, cost=cost)
            if not granted and cost > 1:  # close to the limit: what is left, one by one
                cost = 1
                granted = await self.limiter.hit(item, bucket, caller, cost=1)
            if granted:
                lease.left, lease.until = cost - 1, until
            return granted
        finally:
            lease.reserving = None
            done.set()
            if len(self._leases) > self.max_callers:
                self._forget_expired()

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for key, lease in list(self._leases.items()):
            if lease.until <= now and lease.reserving is None:
                del self._leases[key]

    async def retry_after(self, item: RateLimitItem, bucket: str, caller: str) -> int:
        """Whole seconds until ``caller``'s window frees a slot."""
        stats = await self.limiter.get_window_stats(item, bucket, caller)
        return retry_after(stats.reset_time, time.time())


RATE_LIMITS = web.AppKey("rate_limits", RateLimits)
LIMITER = web.AppKey("limiter", LeasedLimiter)


def limits_uri(redis_url: str) -> str:
    return "async+" + redis_url if redis_url.startswith(("redis://", "rediss://")) else redis_url


def use_rate_limits(app: web.Application, limits: RateLimits) -> None:
    app[RATE_LIMITS] = limits

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        # On the app's own connection pool (closed with the app's client); ``limits``
        # documents ``connection_pool`` but types its options as scalars.
        storage = RedisStorage(
            limits_uri(app[SETTINGS].redis_url),
            implementation="redispy",
            key_prefix="jobdeck:ratelimit",
            connection_pool=app[REDIS].connection_pool,  # type: ignore[arg-type]
        )
        app[LIMITER] = LeasedLimiter(MovingWindowRateLimiter(storage))
        yield

    app.cleanup_ctx.append(ctx)


def retry_after(reset_time: float, now: float) -> int:
    """Whole seconds until the window frees a slot (at least 1)."""
    return max(1, math.ceil(reset_time - now))


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limits = request.app[RATE_LIMITS]
    principal = request.get(PRINCIPAL_KEY)
    ep = endpoint_of(request)
    item = limits.item(ep.bucket) if ep is not None else None
    if item is None or principal is None or ep is None:
        return await handler(request)
    limiter = request.app[LIMITER]
    try:
        allowed = await limiter.hit(item, ep.bucket, principal.sub)
        if not allowed:
            wait = await limiter.retry_after(item, ep.bucket, principal.sub)
    except Exception:
        log.exception("rate limiter unavailable; letting the request through")
        return await handler(request)
    if allowed:
        return await handler(request)
    response = problem(
        429,
        f"rate limit for {ep.bucket} requests ({item}) exceeded; retry in {wait} s",
        request_id=request_id(request),
    )
    response.headers["Retry-After"] = str(wait)
    return response
