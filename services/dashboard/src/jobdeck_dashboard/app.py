"""The dashboard's aiohttp app: the page's files, with the ops routes every service has.

The page talks to the API (``/api``) and the gateway (``/socket.io``) on its own origin:
the ingress puts all three behind one host, so the browser needs no CORS.
"""

from __future__ import annotations

from aiohttp import web
from jobdeck.settings import Settings
from jobdeck.web import create_app

from jobdeck_dashboard.assets import Asset, load_assets
from jobdeck_dashboard.config import DashboardConfig

ASSETS = web.AppKey("assets", dict)

# The page loads nothing but its own files and talks only to its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def serve_asset(request: web.Request) -> web.StreamResponse:
    """One file, gzipped when the browser accepts it; revalidated by ETag on every load."""
    asset: Asset | None = request.app[ASSETS].get(request.path)
    if asset is None:
        raise web.HTTPNotFound(text=f"no such file: {request.path}")
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    headers.update(SECURITY_HEADERS)
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type=asset.content_type, headers=headers)


def build_app(settings: Settings, config: DashboardConfig | None = None) -> web.Application:
    config = config or DashboardConfig()
    app = create_app(settings)
    app[ASSETS] = load_assets(config.static_dir, config.vendor_dir)
    app.router.add_get("/{path:.*}", serve_asset)
    return app
