"""``python -m jobdeck_api``: the query and command API (port ``JOBDECK_API_PORT``, 8000).

Rate limits may be tuned with ``JOBDECK_API_RATE_LIMIT`` / ``JOBDECK_API_BULK_RATE_LIMIT``
(``limits`` notation, e.g. ``1200/minute``); ``JOBDECK_API_RATE_LIMIT=off`` disables them.
Cost limits (statement timeout, heavy-search lane, refusal threshold): ``limits.CostLimits``.
"""

from __future__ import annotations

import asyncio
import os

import uvloop
from jobdeck.logs import setup_logging
from jobdeck.settings import Settings
from jobdeck.usage import ResourceThresholds
from jobdeck.web import run_service

from jobdeck_api.app import build_app
from jobdeck_api.limits import CostLimits
from jobdeck_api.security import RateLimits


def main() -> None:
    # uvloop: a faster event loop for aiohttp and asyncpg (about a third less CPU a request).
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    settings = Settings.from_env("api")
    setup_logging("api", settings.log_level)
    default = os.environ.get("JOBDECK_API_RATE_LIMIT", RateLimits.default)
    limits = RateLimits(
        default=default if default != "off" else RateLimits.default,
        bulk=os.environ.get("JOBDECK_API_BULK_RATE_LIMIT", RateLimits.bulk),
        enabled=default != "off",
    )
    app = build_app(settings, limits, ResourceThresholds.from_env(), CostLimits.from_env())
    run_service(app, "api")


if __name__ == "__main__":
    main()
