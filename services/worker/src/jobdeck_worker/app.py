"""The worker's small HTTP side: /healthz, /readyz, /metrics and a /status summary."""

from __future__ import annotations

from aiohttp import web
from jobdeck.supervise import supervise
from jobdeck.usage import use_usage_sampler
from jobdeck.web import READY_CHECKS, create_app

from jobdeck_worker.presence import worker_info
from jobdeck_worker.runtime import WorkerRuntime

RUNTIME = web.AppKey("runtime", WorkerRuntime)


class QueueLoopsDown(Exception):
    """a queue loop of this worker is not running"""


def build_app(runtime: WorkerRuntime) -> web.Application:
    app = create_app(runtime.settings)
    app[RUNTIME] = runtime
    supervise(app, runtime.supervisor)  # its loops and the usage sampler: /readyz "loops"
    use_usage_sampler(app, "worker", runtime.redis)

    async def redis_ok() -> None:
        await runtime.redis.ping()

    async def loops_ok() -> None:
        if not runtime.alive:
            raise QueueLoopsDown()

    app[READY_CHECKS]["redis"] = redis_ok
    app[READY_CHECKS]["queues"] = loops_ok
    app.router.add_get("/status", _status)
    return app


async def _status(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    info = worker_info(runtime.workers, 0)
    info.pop("started_at")
    return web.json_response({"instance": runtime.instance, **info})
