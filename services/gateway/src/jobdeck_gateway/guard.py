"""What an unauthenticated client may cost the gateway: bounded sessions per address,
bounded handshake rate, and a deadline to join ``/jobs``.

An engine.io handshake costs memory before any token is seen, and python-socketio keeps
a session that never joins a namespace for as long as the client answers pings. So:

- handshakes (engine.io requests without a ``sid``) are refused with a 503 problem while
  the gateway holds ``max_unjoined_sessions`` sessions that have not joined ``/jobs``
  (from all addresses together: what a flood from many addresses can cost is bounded);
- and from one client address with a 429 problem once the address holds
  ``max_connections_per_address`` sessions or has spent its handshake bucket
  (``handshake_burst``, refilled at ``handshakes_per_s``);
- a session that has not joined ``/jobs`` ``join_timeout_s`` after its handshake (or
  after it left ``/jobs``) is closed (and dropped at once, not after a close handshake a
  gone client never answers).

The client address is the peer's, or — when the peer is a trusted proxy (the ingress) —
the last address of its ``X-Forwarded-For``, which that proxy appended itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web
from jobdeck.web import problem

from jobdeck_gateway import metrics
from jobdeck_gateway.config import GatewayConfig
from jobdeck_gateway.engine import CompactingEngine, shrink
from jobdeck_gateway.limits import TokenBucket
from jobdeck_gateway.protocol import NAMESPACE

log = logging.getLogger(__name__)

MAX_TRACKED_ADDRESSES = 100_000
PER_ADDRESS = "too many connections or handshakes from this address; retry later"


def origin_policy(config: GatewayConfig) -> str | Callable[[str | None, dict[str, Any]], bool]:
    """python-engineio's ``cors_allowed_origins``: ``*``, or a check that allows the
    gateway's own origin and the listed ones. Its own: the origin's host[:port] is the
    ``Host`` the request was sent to (the ingress passes it on), whatever the scheme (TLS
    may end before the ingress). A request without an ``Origin`` is not a browser's
    cross-origin request."""
    listed = config.origins
    if "*" in listed:
        return "*"

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None or origin in listed:
            return True
        host = str(environ.get("HTTP_X_FORWARDED_HOST") or environ.get("HTTP_HOST", ""))
        return origin.partition("://")[2] == host.split(",")[0].strip()

    return allowed


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    peer = request.remote or "unknown"
    if peer in trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return peer


@dataclass(frozen=True)
class Refusal:
    """Why a handshake is refused: the answer's status, the metric's reason, the detail,
    and when to retry."""

    status: int
    reason: str
    detail: str
    retry_after_s: float


class SessionGuard:
    """Counts engine.io sessions per address, and those not joined yet, and enforces the
    limits above."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.proxies = config.proxies
        self.sessions: Counter[str] = Counter()
        self._address_of: dict[str, str] = {}
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self.sio: socketio.AsyncServer | None = None

    # -- handshakes (aiohttp middleware) --------------------------------------------------

    @property
    def unjoined(self) -> int:
        """Sessions that have not joined ``/jobs``: those waiting for their deadline."""
        return len(self._timers)

    def admit(self, address: str) -> Refusal | None:
        """None if ``address`` may open a session now, else why not."""
        if self.unjoined >= self.config.max_unjoined_sessions:
            # Each of them joins or is closed within the join deadline.
            return Refusal(
                503,
                "too_many_unjoined_sessions",
                "the gateway holds too many sessions that have not joined yet; retry later",
                self.config.join_timeout_s,
            )
        if self.sessions[address] >= self.config.max_connections_per_address:
            return Refusal(429, "too_many_handshakes", PER_ADDRESS, self.config.join_timeout_s)
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(self.config.handshakes_per_s, self.config.handshake_burst)
            self._buckets[address] = bucket
            if len(self._buckets) > MAX_TRACKED_ADDRESSES:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        if bucket.take():
            return None
        return Refusal(429, "too_many_handshakes", PER_ADDRESS, bucket.wait_s())

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith("/socket.io") and "sid" not in request.query:
            refusal = self.admit(client_address(request, self.proxies))
            if refusal is not None:
                metrics.REFUSED.labels(refusal.reason).inc()
                response = problem(refusal.status, refusal.detail)
                response.headers["Retry-After"] = str(max(1, round(refusal.retry_after_s)))
                return response
        return await handler(request)

    # -- session lifetime (engine.io events) ----------------------------------------------

    def opened(self, eio_sid: str, environ: dict[str, Any]) -> None:
        request = environ.get("aiohttp.request")
        address = client_address(request, self.proxies) if request is not None else "unknown"
        self._address_of[eio_sid] = address
        self.sessions[address] += 1
        metrics.ENGINE_SESSIONS.inc()
        self._await_join(eio_sid)

    def _await_join(self, eio_sid: str) -> None:
        loop = asyncio.get_running_loop()
        self._timers[eio_sid] = loop.call_later(
            self.config.join_timeout_s, self._join_deadline, eio_sid
        )

    def joined(self, eio_sid: str) -> None:
        """The session joined ``/jobs``: no deadline, no longer counted as unjoined."""
        timer = self._timers.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()

    def left(self, eio_sid: str) -> None:
        """The session left ``/jobs`` but is still open: a fresh deadline to join again."""
        if eio_sid in self._address_of and eio_sid not in self._timers:
            self._await_join(eio_sid)

    def closed(self, eio_sid: str) -> None:
        self.joined(eio_sid)
        address = self._address_of.pop(eio_sid, None)
        if address is None:
            return
        metrics.ENGINE_SESSIONS.dec()
        self.sessions[address] -= 1
        if self.sessions[address] <= 0:
            del self.sessions[address]

    def _join_deadline(self, eio_sid: str) -> None:
        self._timers.pop(eio_sid, None)
        if self.sio is None or self.sio.manager.sid_from_eio_sid(eio_sid, NAMESPACE) is not None:
            return
        metrics.REFUSED.labels("join_timeout").inc()
        self.drop(eio_sid)

    def compact(self) -> None:
        """After a flood: forget the addresses whose bucket has refilled, and rebuild the
        per-session tables at their present size."""
        self._buckets = OrderedDict((a, b) for a, b in self._buckets.items() if not b.full())
        for table in (self.sessions, self._address_of, self._timers):
            shrink(table)

    async def drain(self) -> None:
        """Wait for the sessions being dropped to be closed."""
        if self._closing:
            await asyncio.wait(set(self._closing))

    def drop(self, eio_sid: str) -> None:
        """End an engine.io session now, without waiting for the client."""
        assert self.sio is not None
        socket = self.sio.eio.sockets.pop(eio_sid, None)
        if socket is None:
            self.closed(eio_sid)
            return
        # Not waiting for the CLOSE packet to leave: a gone polling client never collects
        # it. A websocket's connection is closed shortly after, whatever the client does.
        task = asyncio.ensure_future(socket.close(wait=False))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        task.add_done_callback(lambda t: self.closed(eio_sid))
        transport = getattr(socket, "jobdeck_transport", None)
        if transport is not None:
            asyncio.get_running_loop().call_later(1.0, transport.close)


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, telling the guard when engine.io sessions come and go."""

    def __init__(self, guard: SessionGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = guard
        guard.sio = self
        self.eio.after_flood += [lambda: shrink(self.environ), guard.compact]

    def _engineio_server_class(self) -> type[CompactingEngine]:
        return CompactingEngine

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        self.guard.opened(eio_sid, environ)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        if namespace == NAMESPACE and self.manager.sid_from_eio_sid(eio_sid, NAMESPACE):
            self.guard.joined(eio_sid)

    async def _handle_disconnect(self, eio_sid: str, namespace: str | None, reason: Any) -> None:
        """The client left a namespace."""
        await super()._handle_disconnect(eio_sid, namespace, reason)
        self._after_leaving(eio_sid)

    async def disconnect(self, sid: str, namespace: str | None = None, **kwargs: Any) -> None:
        """The server ends a namespace session (e.g. at token expiry)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or "/")
        await super().disconnect(sid, namespace, **kwargs)
        if eio_sid is not None:
            self._after_leaving(eio_sid)

    def _after_leaving(self, eio_sid: str) -> None:
        """An engine.io session still open outside ``/jobs`` is unjoined again."""
        if eio_sid in self.eio.sockets and not self.manager.sid_from_eio_sid(eio_sid, NAMESPACE):
            self.guard.left(eio_sid)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """A packet that is not Socket.IO ends the session, with one (gated) log line
        instead of python-socketio's traceback per packet."""
        if isinstance(data, str):
            try:
                self.packet_class(encoded_packet=data)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                log.info("malformed packet; closing the session", extra={"error": repr(exc)})
                metrics.REFUSED.labels("malformed_packet").inc()
                self.guard.drop(eio_sid)
                return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self.guard.closed(eio_sid)
