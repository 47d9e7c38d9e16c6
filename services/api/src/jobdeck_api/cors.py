"""CORS for the API: none by default (the ingress serves the dashboard and the API on one
origin), or the origins listed in ``JOBDECK_API_CORS_ORIGINS`` — never ``*``, since
callers send bearer tokens.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is
answered here, before authentication (browsers send it without the token); other
responses to a listed origin carry ``Access-Control-Allow-Origin`` with that origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from jobdeck.settings import ConfigError

ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-Id"
EXPOSED_HEADERS = "X-Request-Id, Retry-After"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
CORS_ORIGINS = web.AppKey("cors_origins", frozenset)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def origins_from_env(env: Mapping[str, str]) -> frozenset[str]:
    raw = env.get("JOBDECK_API_CORS_ORIGINS", "")
    origins = frozenset(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise ConfigError(
                f"JOBDECK_API_CORS_ORIGINS={raw!r}: accepts comma-separated origins such as "
                "https://jobs.example.com (no *, no path), or empty (same origin only)"
            )
    return origins


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    allowed = request.app[CORS_ORIGINS]
    if origin is None or origin not in allowed:
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.headers["Vary"] = "Origin"
    return response
