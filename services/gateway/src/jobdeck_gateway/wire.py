"""The websocket fast path of the fan-out: one frame built per event, one write per client.

python-engineio sends each packet through a per-socket queue and writer task, one
``ws.send`` (one frame, one syscall, optional deflate) per packet and client. At the
gateway's fan-out rates that per-message cost is the bottleneck, so for websocket
clients the gateway builds the complete websocket frame of an event once, appends it
to every recipient's pending list, and writes each client's pending frames with a single
``transport.write`` at the end of the loop iteration. Slow clients are detected by the
transport's own write buffer. Polling clients (and sockets mid-upgrade) keep using
engine.io's queue.

Websocket permessage-deflate is turned off: compressing the same small JSON once per
client costs more CPU than the bytes it saves on the links a dashboard uses.
"""

from __future__ import annotations

import struct
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp


class PlainWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket without compression, exposing its transport."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        owner = getattr(self.handler, "__self__", None)  # the engine.io socket
        if owner is not None:
            owner.jobdeck_transport = request.transport
        await self.handler(self)
        return self._sock


def install(sio: socketio.AsyncServer) -> None:
    """Make ``sio`` use ``PlainWebSocket`` for its websocket connections."""
    sio.eio._async = {**sio.eio._async, "websocket": PlainWebSocket}


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final websocket text frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def fast_transport(sock: Any) -> Any:
    """The socket's TCP transport if frames may be written to it directly, else None.

    Only for an upgraded websocket whose engine.io queue is empty, so nothing queued
    earlier can be overtaken.
    """
    transport = getattr(sock, "jobdeck_transport", None)
    if transport is None or not sock.upgraded or sock.upgrading or not sock.queue.empty():
        return None
    return transport
