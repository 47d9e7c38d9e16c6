"""The recorder's HTTP side (ops routes and ``GET /lag``) and its background loops.

The Postgres pool opens without connecting, so the recorder starts (and reports 503 on
``/readyz``) while Postgres is still down, then catches up once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from jobdeck.settings import Settings
from jobdeck.usage import use_usage_sampler
from jobdeck.web import (
    PG,
    READY_CHECKS,
    REDIS,
    SETTINGS,
    create_app,
    problem,
    use_postgres,
    use_redis,
)
from redis.exceptions import RedisError

from jobdeck_recorder import retention
from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.consumer import Recorder
from jobdeck_recorder.janitor import Janitor

CONFIG = web.AppKey("recorder_config", RecorderConfig)
RECORDER = web.AppKey("recorder", Recorder)
JANITOR = web.AppKey("janitor", Janitor)


def build_app(settings: Settings, config: RecorderConfig) -> web.Application:
    app = create_app(settings)
    app[CONFIG] = config
    use_redis(app)
    use_usage_sampler(app, "recorder")
    # min_size 0: the pool opens without connecting; a hung connection fails the batch,
    # which is then retried.
    use_postgres(app, min_size=0, max_size=config.pg_pool_size, command_timeout=60)
    app.cleanup_ctx.append(_recorder)
    app.cleanup_ctx.append(_retention)
    app.router.add_get("/lag", lag_handler)
    return app


async def _recorder(app: web.Application) -> AsyncIterator[None]:
    recorder = Recorder(app[REDIS], app[PG], app[CONFIG], consumer=app[SETTINGS].instance)
    app[RECORDER] = recorder

    async def check() -> None:
        if not recorder.healthy:
            raise RuntimeError(recorder.last_error or "recorder is not recording")

    app[READY_CHECKS]["recorder"] = check
    tasks = [
        asyncio.create_task(recorder.run(), name="recorder"),
        asyncio.create_task(recorder.run_lag_reporter(), name="recorder-lag"),
    ]
    janitor: Janitor | None = None
    if app[CONFIG].janitor_interval_ms > 0:
        settings = app[SETTINGS]
        janitor = Janitor(
            app[REDIS], app[PG], app[CONFIG], settings.instance, settings.stream_maxlen
        )
        app[JANITOR] = janitor
        tasks.append(asyncio.create_task(janitor.run(), name="recorder-janitor"))
    yield
    if janitor is not None:
        janitor.stop()
    recorder.stop()  # finish and ack the batch in hand
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(RedisError, OSError):
        await recorder.publish_lag()


async def _retention(app: web.Application) -> AsyncIterator[None]:
    if app[CONFIG].rollup_prune_interval_ms <= 0:
        yield
        return
    task = asyncio.create_task(retention.run(app[PG], app[CONFIG]), name="rollup-retention")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def lag_handler(request: web.Request) -> web.Response:
    """How far Postgres is behind the event stream, as JSON."""
    try:
        lag = await request.app[RECORDER].lag()
    except (RedisError, OSError) as exc:
        return problem(503, f"redis unavailable: {exc.__class__.__name__}")
    body = {**lag.__dict__, "behind": lag.behind, "recorded": request.app[RECORDER].recorded}
    return web.json_response(body)
