"""The ``/jobs`` namespace: authentication at connect, and the client messages.

Every client message is answered by an acknowledgement: ``{"ok": true, ...}`` or
``{"ok": false, "error": <why>, "code": <machine code>}``; a malformed or unknown message
gets an error ack, never a crash or silence.

Each caller is bounded (``GatewayConfig``): sessions per token ``sub``, room changes and
``subscribeJob`` lookups (each a Postgres query) per session, refilled over time; past a
bound the connect is refused (``too_many_connections``) or the message gets an error ack
with code ``rate_limited``. A job outside the caller's queues looks exactly like a job
that does not exist (``not_found``).

A session lives as long as its token: the JWT is verified once, at connect, and one timer
per client (``loop.call_later`` at ``exp`` + the verifier's leeway) ends the session when
the token does: the client leaves every room at once, gets ``tokenExpired`` and is
disconnected; a message that arrives after that moment is refused (``token_expired``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
import socketio
from jobdeck.auth import InvalidToken, Principal, Role, TokenVerifier

from jobdeck_gateway import metrics
from jobdeck_gateway.config import GatewayConfig
from jobdeck_gateway.fanout import Fanout
from jobdeck_gateway.limits import TokenBucket
from jobdeck_gateway.monitor import active_alerts
from jobdeck_gateway.protocol import (
    ALL_ROOM,
    NAMESPACE,
    RoomKind,
    SocketEvent,
    beyond_stream_end,
    job_room,
    parse_event_id,
    queue_room,
    stats_room,
    user_room,
)
from jobdeck_gateway.queries import QUERIES
from jobdeck_gateway.rooms import Client, Subscriptions
from jobdeck_gateway.stats import QueueSnapshot, Snapshot, queue_stats_payload

log = logging.getLogger(__name__)

MAX_NAME = 200
TOKEN_EXPIRED_TEXT = "token expired; reconnect with a fresh token"


class BadMessage(Exception):
    """A client message is malformed; the text is sent back in the ack."""

    def __init__(self, detail: str, code: str = "bad_request") -> None:
        super().__init__(detail)
        self.code = code


def _text(data: Any, key: str, required: bool = True) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        if required:
            raise BadMessage(f'\'{key}\' is required (send {{"{key}": "..."}})')
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise BadMessage(f"'{key}' must be a non-empty string of at most {MAX_NAME} characters")
    return value


def error(detail: str, code: str) -> dict[str, Any]:
    return {"ok": False, "error": detail, "code": code}


def principal_info(p: Principal) -> dict[str, Any]:
    return {
        "sub": p.sub,
        "role": p.role.name.lower(),
        "roles": p.roles,
        "queues": "*" if p.queues is None else sorted(p.queues),
        "canSubscribeAll": p.has_role(Role.ADMIN),
    }


class JobsNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(
        self,
        verifier: TokenVerifier,
        subs: Subscriptions,
        fanout: Fanout,
        instance: str,
        leeway_s: float = 0.0,
        config: GatewayConfig | None = None,
    ) -> None:
        super().__init__(NAMESPACE)
        self.config = config or GatewayConfig()
        self._sessions_of: Counter[str] = Counter()  # token sub -> sessions on this replica
        self.verifier = verifier
        self.leeway_s = leeway_s  # the verifier's: a token is good until exp + leeway
        self._expiring: set[str] = set()  # sids whose token ran out, until they are gone
        self.subs = subs
        self.fanout = fanout
        self.instance = instance
        self.pg: asyncpg.Pool | None = None
        self.latest_stats: Callable[[], Snapshot | None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers = {
            "subscribeQueue": self.subscribe_queue,
            "unsubscribeQueue": self.unsubscribe_queue,
            "subscribeStats": self.subscribe_stats,
            "unsubscribeStats": self.unsubscribe_stats,
            "subscribeJob": self.subscribe_job,
            "unsubscribeJob": self.unsubscribe_job,
            "subscribeAll": self.subscribe_all,
            "unsubscribeAll": self.unsubscribe_all,
            "resume": self.resume,
        }

    # -- connection ----------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self.on_connect(*args)
        if event == "disconnect":
            return self.on_disconnect(args[0])
        sid = args[0]
        data = args[1] if len(args) > 1 else None
        handler = self._handlers.get(event)
        if handler is None:
            return error(f"unknown message {event!r}; see proto/socketio.schema.json", "unknown")
        client = self.subs.clients.get(sid)
        if client is not None and event != "resume" and not client.room_changes.take():
            return error(
                f"too many subscription changes; at most {self.config.subscribes_per_s:g}/s",
                "rate_limited",
            )
        if client is None:
            if sid in self._expiring:
                return error(TOKEN_EXPIRED_TEXT, "token_expired")
            return error("not connected", "not_connected")
        if self._token_ran_out(client):  # the timer may lag behind by a loop iteration
            self._expire(sid)
            return error(TOKEN_EXPIRED_TEXT, "token_expired")
        try:
            return await handler(client, data)
        except BadMessage as exc:
            return error(str(exc), exc.code)
        except Exception:
            log.exception("message failed", extra={"event": event})
            return error("internal error; try again", "internal")

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token: Any = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            header = environ.get("HTTP_AUTHORIZATION", "")
            if header.lower().startswith("bearer "):
                token = header[7:].strip()
        try:
            principal = await self.verifier.verify(token if isinstance(token, str) else None)
        except InvalidToken as exc:
            reason = exc.reason
            metrics.REFUSED.labels(reason).inc()
            raise socketio.exceptions.ConnectionRefusedError(str(exc), {"reason": reason}) from None
        if self._sessions_of[principal.sub] >= self.config.max_connections_per_token:
            metrics.REFUSED.labels("too_many_connections").inc()
            raise socketio.exceptions.ConnectionRefusedError(
                f"at most {self.config.max_connections_per_token} connections per token",
                {"reason": "too_many_connections"},
            )
        last = auth.get("lastEventId") if isinstance(auth, dict) else None
        if last is not None and parse_event_id(last) is None:
            metrics.REFUSED.labels("bad_last_event_id").inc()
            raise socketio.exceptions.ConnectionRefusedError(
                "lastEventId must be a stream id such as '1764000000000-0'",
                {"reason": "bad_last_event_id"},
            )
        if last is not None:
            ids = await self.fanout.stream_ids()
            refusal = beyond_stream_end(last, ids[0]) if ids is not None else None
            if refusal is not None:
                metrics.REFUSED.labels("bad_last_event_id").inc()
                raise socketio.exceptions.ConnectionRefusedError(
                    refusal, {"reason": "bad_last_event_id"}
                )
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        client = Client(
            sid=sid,
            principal=principal,
            socket=self.server.eio.sockets.get(eio_sid),
            held=last is not None,
            resume_from=last,
            room_changes=TokenBucket(self.config.subscribes_per_s, self.config.subscribe_burst),
            job_lookups=TokenBucket(self.config.job_lookups_per_s, self.config.job_lookup_burst),
        )
        self.subs.add(client)
        self.subs.join(client, user_room(principal.sub))  # its own exports' events
        self._sessions_of[principal.sub] += 1
        metrics.CONNECTED_CLIENTS.inc()
        self._arm_expiry(client)
        self._spawn(self._greet(client))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- token expiry ------------------------------------------------------------------

    def _deadline(self, client: Client) -> float | None:
        exp = client.principal.expires_at
        return None if exp is None else exp + self.leeway_s

    def _token_ran_out(self, client: Client) -> bool:
        deadline = self._deadline(client)
        return deadline is not None and time.time() >= deadline

    def _arm_expiry(self, client: Client) -> None:
        """One timer per session, not a JWT check per event: 2,000 handles cost nothing."""
        deadline = self._deadline(client)
        if deadline is not None:
            delay = max(0.0, deadline - time.time())
            loop = asyncio.get_running_loop()
            client.expiry = loop.call_later(delay, self._expire, client.sid)

    def _expire(self, sid: str) -> None:
        """The token ran out: nothing more reaches the client from this very step on."""
        client = self._forget(sid)
        if client is None:
            return
        self._expiring.add(sid)
        metrics.EXPIRED_SESSIONS.inc()
        self._spawn(self._end_session(client))

    async def _end_session(self, client: Client) -> None:
        """Tell the client why, then disconnect it (the notice goes out first)."""
        exp = client.principal.expires_at or 0.0
        payload = {
            "reason": "token_expired",
            "message": f"{TOKEN_EXPIRED_TEXT}; the session is closed",
            "expiredAt": int(exp * 1000),
        }
        try:
            self.fanout.flush()  # live frames already accepted leave before the notice
            await self.emit(SocketEvent.TOKEN_EXPIRED, payload, to=client.sid)
            metrics.EVENTS_EMITTED.labels(str(SocketEvent.TOKEN_EXPIRED)).inc()
            await self.server.disconnect(client.sid, namespace=NAMESPACE)
        except Exception:
            log.exception("ending an expired session failed", extra={"sid": client.sid})
        finally:
            self._expiring.discard(client.sid)

    async def _greet(self, client: Client) -> None:
        """Send ``connected`` once the CONNECT packet is out (it follows the handler)."""
        for _ in range(100):
            if self.server.manager.is_connected(client.sid, NAMESPACE):
                break
            await asyncio.sleep(0.01)
        payload = {
            **principal_info(client.principal),
            "serverTime": int(time.time() * 1000),
            "lastEventId": self.fanout.last_id,
            "resumePending": client.held,
            "instance": self.instance,
            "activeAlerts": await active_alerts(self.fanout.redis, client.principal),
        }
        await self.emit(SocketEvent.CONNECTED, payload, to=client.sid)
        metrics.EVENTS_EMITTED.labels(str(SocketEvent.CONNECTED)).inc()

    def on_disconnect(self, sid: str) -> None:
        self._forget(sid)

    def _forget(self, sid: str) -> Client | None:
        """Drop ``sid`` from every room and index (once: a second call finds nothing)."""
        client = self.subs.remove(sid)
        if client is not None:
            self._sessions_of[client.principal.sub] -= 1
            if self._sessions_of[client.principal.sub] <= 0:
                del self._sessions_of[client.principal.sub]
            if client.expiry is not None:
                client.expiry.cancel()
                client.expiry = None
            metrics.CONNECTED_CLIENTS.dec()
            self._update_subscription_metrics()
        return client

    def _update_subscription_metrics(self) -> None:
        for kind, n in self.subs.counts_by_kind().items():
            metrics.SUBSCRIPTIONS.labels(str(kind)).set(n)

    def _joined(self, client: Client, room: str) -> dict[str, Any]:
        if self.subs.clients.get(client.sid) is not client:
            # Gone while the handler awaited (disconnected, or its token expired): joining
            # now would leave a stale member in the room index.
            if client.sid in self._expiring:
                return error(TOKEN_EXPIRED_TEXT, "token_expired")
            return error("not connected", "not_connected")
        added = self.subs.join(client, room)
        self._update_subscription_metrics()
        return {"ok": True, "room": room, "already": not added, "lastEventId": self.fanout.last_id}

    def _left(self, client: Client, room: str) -> dict[str, Any]:
        removed = self.subs.leave(client, room)
        self._update_subscription_metrics()
        return {"ok": True, "room": room, "wasSubscribed": removed}

    # -- client messages -------------------------------------------------------------

    async def subscribe_queue(self, client: Client, data: Any) -> dict[str, Any]:
        queue = _text(data, "queue")
        assert queue is not None
        if not client.principal.can_see(queue):
            return error(f"queue {queue!r} is not in your token", "forbidden")
        ack = self._joined(client, queue_room(queue))
        self._send_latest_stats(client, queue)
        return ack

    def _send_latest_stats(self, client: Client, queue: str) -> None:
        """A dashboard shows numbers at once, not after the next stats tick."""
        snap = self.latest_stats() if self.latest_stats is not None else None
        if snap is not None:
            stats = snap.queues.get(queue) or QueueSnapshot()
            payload = queue_stats_payload(queue, stats, snap.ts, snap.window_s)
            self.fanout.send([client], SocketEvent.QUEUE_STATS, payload)

    async def unsubscribe_queue(self, client: Client, data: Any) -> dict[str, Any]:
        queue = _text(data, "queue")
        assert queue is not None
        return self._left(client, queue_room(queue))

    async def subscribe_stats(self, client: Client, data: Any) -> dict[str, Any]:
        """A queue's ``queueStats`` and ``queueStateChange`` without its job events."""
        queue = _text(data, "queue")
        assert queue is not None
        if not client.principal.can_see(queue):
            return error(f"queue {queue!r} is not in your token", "forbidden")
        ack = self._joined(client, stats_room(queue))
        self._send_latest_stats(client, queue)
        return ack

    async def unsubscribe_stats(self, client: Client, data: Any) -> dict[str, Any]:
        queue = _text(data, "queue")
        assert queue is not None
        return self._left(client, stats_room(queue))

    async def subscribe_job(self, client: Client, data: Any) -> dict[str, Any]:
        job_id = _text(data, "jobId")
        hint = _text(data, "queue", required=False)
        assert job_id is not None
        principal = client.principal
        if hint is not None and not principal.can_see(hint):
            return error(f"queue {hint!r} is not in your token", "forbidden")
        if principal.queues is None or hint is not None:
            # Sees every queue, or names a visible one: joined without a lookup. The job
            # may not be recorded yet, or be of another queue: the room only ever delivers
            # events of the caller's queues, so joining leaks nothing either way.
            return self._joined(client, job_room(job_id))
        if not client.job_lookups.take():
            return error(
                f"too many job lookups; at most {self.config.job_lookups_per_s:g}/s",
                "rate_limited",
            )
        queue = await self._job_queue(job_id)
        if queue is not None and principal.can_see(queue):
            return self._joined(client, job_room(job_id))
        return error(
            f"job {job_id!r} not found (if it was just enqueued, pass its 'queue' too)",
            "not_found",
        )

    async def _job_queue(self, job_id: str) -> str | None:
        if self.pg is None:
            return None
        try:
            queue = await self.pg.fetchval(QUERIES["job_queue"], job_id)
        except (asyncpg.PostgresError, OSError) as exc:
            raise BadMessage("job lookup is unavailable; try again", "unavailable") from exc
        return str(queue) if queue is not None else None

    async def unsubscribe_job(self, client: Client, data: Any) -> dict[str, Any]:
        job_id = _text(data, "jobId")
        assert job_id is not None
        return self._left(client, job_room(job_id))

    async def subscribe_all(self, client: Client, data: Any) -> dict[str, Any]:
        if not client.principal.has_role(Role.ADMIN):
            return error("subscribeAll needs the admin role", "forbidden")
        return self._joined(client, ALL_ROOM)

    async def unsubscribe_all(self, client: Client, data: Any) -> dict[str, Any]:
        return self._left(client, ALL_ROOM)

    async def resume(self, client: Client, data: Any) -> dict[str, Any]:
        """Replay what the client's current rooms missed after ``lastEventId``, then live."""
        last = _text(data, "lastEventId", required=False) or client.resume_from
        if last is None:
            raise BadMessage("'lastEventId' is required (or pass it in the connect auth)")
        if parse_event_id(last) is None:
            raise BadMessage("'lastEventId' must be a stream id such as '1764000000000-0'")
        ack = await self.fanout.resume(client, last)
        if ack.get("ok"):
            client.resume_from = None
        return ack


ROOM_KINDS = tuple(RoomKind)
