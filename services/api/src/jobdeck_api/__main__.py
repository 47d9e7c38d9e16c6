"""``python -m jobdeck_api``: the query and command API (port ``JOBDECK_API_PORT``, 8000).

``JOBDECK_API_CORS_ORIGINS`` lists the browser origins allowed besides the API's own.
``JOBDECK_API_JOB_TRACEBACKS=hide`` strips failed jobs' tracebacks (worker file paths) from
job detail. Rate limits may be tuned with ``JOBDECK_API_RATE_LIMIT`` /
``JOBDECK_API_BULK_RATE_LIMIT`` (``limits`` notation, e.g. ``1200/minute``); ``off``
disables one. A bad value of any setting stops the service at start with one line saying
what the variable accepts.
Cost limits (statement timeout, heavy-search lane, refusal threshold): ``limits.CostLimits``
(``JOBDECK_API_*``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

import uvloop
from jobdeck.logs import setup_logging
from jobdeck.settings import Settings, exit_on_config_error, parse_choice
from jobdeck.usage import ResourceThresholds
from jobdeck.web import run_service

from jobdeck_api.app import build_app
from jobdeck_api.cors import origins_from_env
from jobdeck_api.exports_api import ExportLimits
from jobdeck_api.limits import CostLimits
from jobdeck_api.security import RateLimits

TRACEBACKS = ("show", "hide")


def configure(
    env: Mapping[str, str],
) -> tuple[Settings, RateLimits, ResourceThresholds, bool, frozenset[str], ExportLimits]:
    """Settings, rate limits, alert thresholds, whether job detail shows tracebacks, CORS
    origins, export limits; ConfigError if a value is bad."""
    tracebacks = parse_choice(
        "JOBDECK_API_JOB_TRACEBACKS", env.get("JOBDECK_API_JOB_TRACEBACKS", "show"), TRACEBACKS
    )
    return (
        Settings.from_env("api", env),
        RateLimits.from_env(env),
        ResourceThresholds.from_env(env),
        tracebacks == "show",
        origins_from_env(env),
        ExportLimits.from_env(env),
    )


def main() -> None:
    # uvloop: a faster event loop for aiohttp and asyncpg (about a third less CPU a request).
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    settings, limits, thresholds, tracebacks, origins, export_limits = exit_on_config_error(
        "api", lambda: configure(os.environ)
    )
    setup_logging("api", settings.log_level)
    app = build_app(
        settings,
        limits,
        thresholds,
        CostLimits.from_env(),
        show_tracebacks=tracebacks,
        cors_origins=origins,
        export_limits=export_limits,
    )
    run_service(app, "api")


if __name__ == "__main__":
    main()
