"""The api service's application: ops routes, auth, rate limits, the API and its docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from jobdeck.auth import Role, TokenVerifier
from jobdeck.instances import use_presence
from jobdeck.queues import QueueClient
from jobdeck.queues.admin import QueueAdmin
from jobdeck.settings import Settings
from jobdeck.usage import ResourceThresholds, use_usage_sampler
from jobdeck.web import REDIS, SETTINGS, create_app, use_postgres, use_redis

from jobdeck_api import (
    analytics_api,
    audit,
    cron_preview_api,
    exports_api,
    jobs_actions,
    jobs_enqueue,
    jobs_read,
    jobs_remove,
    jobs_reorder,
    queues_admin_api,
    queues_api,
    schedules_api,
    system_api,
    templates_api,
    workers_api,
)
from jobdeck_api.asyncapi import install_asyncapi
from jobdeck_api.audit_models import AuditPage, AuditQuery
from jobdeck_api.cors import CORS_ORIGINS, cors_middleware
from jobdeck_api.limits import HEAVY_LANE, LIMITS, CostLimits, HeavyLane
from jobdeck_api.openapi import install_docs
from jobdeck_api.routing import DENIED_HOOK, ApiRoutes, Endpoint
from jobdeck_api.search_estimates import ESTIMATES, Estimates
from jobdeck_api.security import (
    TOKEN_CACHE,
    RateLimits,
    VerifiedTokens,
    auth_middleware,
    rate_limit_middleware,
    use_rate_limits,
)
from jobdeck_api.state import ADMIN, QUEUES, SHOW_TRACEBACKS, THRESHOLDS, VERIFIER


async def keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool without asyncpg's reset query.

    By default every release sends ``RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()``: a round trip costing a search a tenth of its CPU. The API
    leaves no session state to undo: it never LISTENs, takes advisory locks, or SETs
    outside a transaction (``SET LOCAL`` ends with it), and asyncpg still rolls back a
    transaction left open before calling this.
    """


# The Postgres pool (bench/search.py gives its SQL baseline the very same).
PG_POOL_OPTIONS: dict[str, Any] = {"min_size": 2, "max_size": 10, "reset": keep_session}

admin_routes = ApiRoutes()
admin_routes.route(
    "GET",
    "/api/v1/audit",
    tags=["audit"],
    role=Role.ADMIN,
    query=AuditQuery,
    response=AuditPage,
    summary="Read the audit log",
    description=(
        "Newest first; filter by actor, action, outcome and time range (since/until); "
        "page with `cursor` = the previous page's `nextCursor`. Admins whose token covers "
        "every queue (`*`) only: rows span all queues."
    ),
    operation_id="audit_log",
)(audit.audit_page)


# In matching order: static paths (``/jobs/queues``, ``/jobs/search``, ``/jobs/bulk/...``)
# before the ``/jobs/{id}`` ones that would shadow them.
ROUTE_GROUPS = (
    queues_api.routes,
    queues_admin_api.routes,
    exports_api.routes,
    templates_api.routes,
    cron_preview_api.routes,  # /schedules/preview before /schedules/{id}
    schedules_api.routes,
    workers_api.routes,
    analytics_api.routes,
    jobs_read.routes,
    jobs_enqueue.routes,
    jobs_actions.routes,
    jobs_remove.routes,
    jobs_reorder.routes,
    admin_routes,
    system_api.routes,
)


def all_endpoints() -> list[Endpoint]:
    """Every API endpoint, static paths before the ``{id}`` ones that would shadow them."""
    return [endpoint for group in ROUTE_GROUPS for endpoint in group.endpoints]


def build_app(
    settings: Settings,
    rate_limits: RateLimits | None = None,
    thresholds: ResourceThresholds | None = None,
    limits: CostLimits | None = None,
    *,
    show_tracebacks: bool = True,
    cors_origins: frozenset[str] = frozenset(),
    export_limits: exports_api.ExportLimits | None = None,
) -> web.Application:
    app = create_app(
        settings,
        middlewares=[cors_middleware, auth_middleware, rate_limit_middleware],
        # Long but valid query strings (100 queue names, a cursor) must not hit
        # aiohttp's default 8 KiB request-line limit; the ingress allows the same 64 KiB
        # for the request line and each header (deploy/nginx).
        handler_args={"max_line_size": 65536, "max_field_size": 65536},
    )
    app[VERIFIER] = TokenVerifier(settings)
    app[SHOW_TRACEBACKS] = show_tracebacks
    app[CORS_ORIGINS] = cors_origins
    app[TOKEN_CACHE] = VerifiedTokens(app[VERIFIER])
    app[DENIED_HOOK] = audit.record_denied
    app[LIMITS] = limits = limits or CostLimits()
    app[HEAVY_LANE] = HeavyLane(limits)
    app[ESTIMATES] = Estimates(limits.estimate_ttl_s)
    use_postgres(app, **PG_POOL_OPTIONS, server_settings=limits.server_settings())
    use_redis(app)
    use_presence(app, "api")
    use_usage_sampler(app, "api")
    app[THRESHOLDS] = thresholds or ResourceThresholds()

    async def queue_client(app: web.Application) -> AsyncIterator[None]:
        app[QUEUES] = QueueClient(app[REDIS], app[SETTINGS].stream_maxlen)
        app[ADMIN] = QueueAdmin(app[REDIS], app[SETTINGS].stream_maxlen)
        yield

    app.cleanup_ctx.append(queue_client)
    use_rate_limits(app, rate_limits or RateLimits())
    app[exports_api.EXPORT_LIMITS] = export_limits or exports_api.ExportLimits()
    for group in ROUTE_GROUPS:
        group.install(app)
    install_docs(app, all_endpoints())
    install_asyncapi(app)
    return app
