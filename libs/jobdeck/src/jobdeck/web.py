"""HTTP plumbing every service shares: problem-details errors, health, readiness, metrics.

Resources (the Postgres pool, the Redis client) are opened in ``cleanup_ctx`` and kept
under typed ``AppKey``s; ``run_service`` runs the app with a graceful SIGTERM.

Every error a client can see is problem JSON, including those aiohttp answers before any
handler runs (a malformed request line, a line or header over the limit): aiohttp builds
those in ``RequestHandler.handle_error`` with no hook, so its server module is pointed at
``ProblemRequestHandler`` below. No response names a server version (``Server: jobdeck``).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web, web_protocol, web_server
from aiohttp.web_request import BaseRequest
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from redis.asyncio import Redis

from jobdeck.db import create_pool
from jobdeck.settings import Settings

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
PG = web.AppKey("pg", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
READY_CHECKS = web.AppKey("ready_checks", dict)
REQUEST_ID = web.RequestKey("request_id", str)
# A client's (or the ingress's) X-Request-Id is kept only if it looks like an id.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
SERVER_HEADER = "jobdeck"
CLIENT_GONE = 499  # nginx's code for "the client closed the connection first"

PROBLEM_TYPE = "about:blank"
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

HTTP_REQUESTS = Counter(
    "jobdeck_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "jobdeck_http_request_seconds", "HTTP request latency", ["method", "route"]
)


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> web.Response:
    """An RFC 9457 problem-details response."""
    from http import HTTPStatus

    body = {
        "type": PROBLEM_TYPE,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return web.json_response(body, status=status, content_type="application/problem+json")


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every error into problem JSON; never leak a stack trace; count and time requests."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ConnectionResetError:
        # The client went away mid-request (e.g. mid-body): nothing to answer, no error.
        log.info("client disconnected", extra={"path": request.path})
        response = web.Response(status=CLIENT_GONE)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem(exc.status, exc.text or exc.reason, title=exc.reason)
        for header in ("Retry-After", "WWW-Authenticate", "Allow"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        response = problem(
            500, "internal error; see the service log", request_id=request_id(request)
        )
    route = _route_label(request)
    _request_counter(request.method, route, response.status).inc()
    _latency_histogram(request.method, route).observe(time.perf_counter() - started)
    return response


# The labelled series of each route, looked up once: ``labels()`` costs a lock and a
# few allocations per call, on every request.
@functools.lru_cache(maxsize=1024)
def _request_counter(method: str, route: str, status: int) -> Any:
    return HTTP_REQUESTS.labels(method, route, str(status))


@functools.lru_cache(maxsize=1024)
def _latency_histogram(method: str, route: str) -> Any:
    return HTTP_LATENCY.labels(method, route)


# Request ids: a random per-process prefix and a counter (32 hex digits, like a uuid4's
# hex), unique across processes without a getrandom() call per request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def request_id(request: web.Request) -> str:
    """This request's id (audit rows and error bodies carry it): the caller's or the
    ingress's ``X-Request-Id`` if it looks like an id (1-64 of ``A-Za-z0-9._:-``), else
    one of the server's own; a malformed one never reaches a log line or the audit."""
    rid = request.get(REQUEST_ID)
    if rid is None:
        given = request.headers.get("X-Request-Id", "")
        if not REQUEST_ID_PATTERN.fullmatch(given):
            given = f"{_ID_PREFIX}{next(_id_counter):016x}"
        rid = request[REQUEST_ID] = given
    return rid


class ProblemRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering its own errors (400 for a malformed or
    over-long request line or header, 500) as problem JSON rather than text or HTML."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("request failed before routing", exc_info=exc)
        else:  # junk from a client: one line, no traceback
            log.info("bad request", extra={"status": status, "error": str(exc or message)[:200]})
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        detail = "internal error" if status >= 500 else _client_error_text(exc, message)
        response = problem(status, detail)
        response.headers["Server"] = SERVER_HEADER
        response.force_close()
        return response


def _client_error_text(exc: BaseException | None, message: str | None) -> str:
    text = str(getattr(exc, "message", None) or message or exc or "bad request")
    return text.splitlines()[0][:200] if text else "bad request"


web_server.RequestHandler = ProblemRequestHandler  # type: ignore[attr-defined]


async def _hide_server_version(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_HEADER


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    checks: dict[str, Callable[[], Awaitable[None]]] = request.app[READY_CHECKS]
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=2.0)
            results[name] = "ok"
        except Exception as exc:
            # The reason too (which loop died, and how): what an operator reads first.
            reason = f": {str(exc)[:300]}" if str(exc) else ""
            results[name] = f"failing: {exc.__class__.__name__}{reason}"
    ok = all(v == "ok" for v in results.values())
    # The pid says which process answered: the one a supervisor started, not another that
    # holds its port (a readiness check that takes any 200 takes the wrong one for ready).
    body = {"status": "ok" if ok else "unavailable", "checks": results, "pid": os.getpid()}
    return web.json_response(body, status=200 if ok else 503)


def create_app(
    settings: Settings,
    middlewares: list[Any] | None = None,
    handler_args: dict[str, Any] | None = None,
) -> web.Application:
    """An app with the ops routes and error handling; the service adds its own routes.

    ``handler_args`` go to aiohttp's request handler (e.g. a larger ``max_line_size`` for
    long query strings).
    """
    app = web.Application(
        middlewares=[problem_middleware, *(middlewares or [])], handler_args=handler_args
    )
    app[SETTINGS] = settings
    app[READY_CHECKS] = {}
    app.on_response_prepare.append(_hide_server_version)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", make_aiohttp_handler(REGISTRY))
    return app


def use_postgres(
    app: web.Application, min_size: int = 1, max_size: int = 10, **pool_options: Any
) -> None:
    """The app's asyncpg pool; ``pool_options`` go to ``asyncpg.create_pool``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(
            app[SETTINGS].database_url, min_size=min_size, max_size=max_size, **pool_options
        )
        app[PG] = pool

        async def check() -> None:
            await pool.fetchval("SELECT 1")

        app[READY_CHECKS]["postgres"] = check
        yield
        await pool.close()

    app.cleanup_ctx.append(ctx)


def use_redis(app: web.Application) -> None:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        redis = Redis.from_url(app[SETTINGS].redis_url, health_check_interval=10)
        app[REDIS] = redis

        async def check() -> None:
            await redis.ping()

        app[READY_CHECKS]["redis"] = check
        yield
        await redis.aclose()

    app.cleanup_ctx.append(ctx)


def run_service(app: web.Application, service: str) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, finish in-flight requests, clean up."""
    settings = app[SETTINGS]
    log.info("starting", extra={"service": service, "settings": settings.masked()})
    if settings.uses_dev_secret and settings.development:
        log.warning(
            "JOBDECK_JWT_SECRET is the development default: anyone can mint tokens; "
            "allowed only because JOBDECK_ENV=development"
        )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=10.0,
        access_log=None,
        handle_signals=True,
    )
