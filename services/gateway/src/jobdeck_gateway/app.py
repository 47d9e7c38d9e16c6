"""The gateway's aiohttp app: ops routes, the Socket.IO server and its background loops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import socketio
from aiohttp import web
from jobdeck.auth import TokenVerifier
from jobdeck.instances import use_presence
from jobdeck.settings import Settings
from jobdeck.supervise import supervise
from jobdeck.usage import use_usage_sampler
from jobdeck.web import PG, REDIS, create_app, use_postgres, use_redis

from jobdeck_gateway import wire
from jobdeck_gateway.config import GatewayConfig
from jobdeck_gateway.fanout import Fanout
from jobdeck_gateway.guard import GuardedServer, SessionGuard, origin_policy
from jobdeck_gateway.monitor import Monitor
from jobdeck_gateway.namespace import JobsNamespace
from jobdeck_gateway.rooms import Subscriptions

SOCKETIO_PATH = "/socket.io"
MAX_CLIENT_PACKET = 64 * 1024
SIO = web.AppKey("sio", socketio.AsyncServer)
FANOUT = web.AppKey("fanout", Fanout)
MONITOR = web.AppKey("monitor", Monitor)
SUBSCRIPTIONS = web.AppKey("subscriptions", Subscriptions)


def quiet_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    return logger


def build_app(settings: Settings, config: GatewayConfig | None = None) -> web.Application:
    config = config or GatewayConfig()
    guard = SessionGuard(config)
    app = create_app(settings, middlewares=[guard.middleware])
    use_postgres(app, min_size=1, max_size=4)
    use_redis(app)
    use_presence(app, "gateway")
    use_usage_sampler(app, "gateway")
    sio = GuardedServer(
        guard,
        async_mode="aiohttp",
        # Client messages are small (a queue name, a job id): no megabyte packets.
        max_http_buffer_size=MAX_CLIENT_PACKET,
        ping_interval=config.ping_interval_s,
        ping_timeout=config.ping_timeout_s,
        cors_allowed_origins=origin_policy(config),
        # Our loggers (JSON, flood-gated), not the libraries' extra plain-text handlers.
        logger=quiet_logger("socketio.server"),
        engineio_logger=quiet_logger("engineio.server"),
    )
    sio.attach(app, socketio_path=SOCKETIO_PATH)
    wire.install(sio)
    subs = Subscriptions()
    app[SIO] = sio
    app[SUBSCRIPTIONS] = subs

    async def loops(app: web.Application) -> AsyncIterator[None]:
        redis = app[REDIS]
        fanout = Fanout(
            sio,
            subs,
            redis,
            config.client_queue_limit,
            config.read_batch,
            config.client_buffer_bytes,
            config.flush_interval_s,
        )
        await fanout.start_position()
        namespace = JobsNamespace(
            TokenVerifier(settings),
            subs,
            fanout,
            settings.instance,
            settings.jwt_leeway_s,
            config,
        )
        namespace.pg = app[PG]
        sio.register_namespace(namespace)
        monitor = Monitor(
            redis, app[PG], fanout, subs, config, settings.instance, settings.stream_maxlen
        )
        namespace.latest_stats = lambda: monitor.latest
        app[FANOUT] = fanout
        app[MONITOR] = monitor
        # The stream reader (which fans out to the sockets) and the stats monitor: /readyz
        # fails while either is dead, and each is restarted where it left off.
        supervisor = supervise(app)
        supervisor.start("fanout", fanout.run)
        supervisor.start("monitor", monitor.run)
        yield
        await supervisor.stop()

    async def disconnect_clients(app: web.Application) -> None:
        """Close every socket first: open websockets would hold aiohttp's shutdown. Not
        engine.io's own ``disconnect()``: it waits for each CLOSE packet to be collected,
        forever for a polling client that has gone."""
        for eio_sid in list(sio.eio.sockets):
            guard.drop(eio_sid)
        await guard.drain()
        await sio.shutdown()

    app.cleanup_ctx.append(loops)
    app.on_shutdown.append(disconnect_clients)
    return app
