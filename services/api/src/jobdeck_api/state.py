"""Typed application keys of the api service (resources opened in ``cleanup_ctx``)."""

from __future__ import annotations

from aiohttp import web
from jobdeck.auth import TokenVerifier
from jobdeck.queues import QueueClient
from jobdeck.queues.admin import QueueAdmin
from jobdeck.usage import ResourceThresholds

QUEUES = web.AppKey("queue_client", QueueClient)
ADMIN = web.AppKey("queue_admin", QueueAdmin)
VERIFIER = web.AppKey("verifier", TokenVerifier)
# Whether job detail shows failed jobs' tracebacks (they carry the workers' file paths):
# ``JOBDECK_API_JOB_TRACEBACKS=hide`` strips them from every response.
SHOW_TRACEBACKS = web.AppKey("show_tracebacks", bool)
THRESHOLDS = web.AppKey("resource_thresholds", ResourceThresholds)
