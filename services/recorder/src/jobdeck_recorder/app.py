"""The recorder's HTTP side (ops routes and ``GET /lag``) and its background loops.

The Postgres pool opens without connecting, so the recorder starts (and reports 503 on
``/readyz``) while Postgres is still down, then catches up once it answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from jobdeck.instances import use_presence
from jobdeck.settings import Settings
from jobdeck.supervise import supervise
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
from jobdeck_recorder.pruner import Pruner

CONFIG = web.AppKey("recorder_config", RecorderConfig)
SHUTDOWN_GRACE_S = 30.0
RECORDER = web.AppKey("recorder", Recorder)
JANITOR = web.AppKey("janitor", Janitor)
PRUNER = web.AppKey("pruner", Pruner)


def build_app(settings: Settings, config: RecorderConfig) -> web.Application:
    app = create_app(settings)
    app[CONFIG] = config
    use_redis(app)
    use_presence(app, "recorder")
    use_usage_sampler(app, "recorder")
    # min_size 0: the pool opens without connecting; a hung connection fails the batch,
    # which is then retried.
    use_postgres(app, min_size=0, max_size=config.pg_pool_size, command_timeout=60)
    app.cleanup_ctx.append(_recorder)
    app.router.add_get("/lag", lag_handler)
    return app


async def _recorder(app: web.Application) -> AsyncIterator[None]:
    recorder = Recorder(app[REDIS], app[PG], app[CONFIG], consumer=app[SETTINGS].instance)
    app[RECORDER] = recorder

    async def check() -> None:
        if not recorder.healthy:
            raise RuntimeError(recorder.last_error or "recorder is not recording")

    app[READY_CHECKS]["recorder"] = check
    # The consumer, its lag reporter, the janitor and the pruners of jobs and of rollups:
    # /readyz fails while one is dead, and each is restarted (the consumer resumes from its
    # group's pending entries).
    supervisor = supervise(app)
    supervisor.start("recorder", recorder.run, stop=recorder.stop)
    supervisor.start("recorder-lag", recorder.run_lag_reporter, stop=recorder.stop)
    if app[CONFIG].janitor_interval_ms > 0:
        settings = app[SETTINGS]
        janitor = Janitor(
            app[REDIS], app[PG], app[CONFIG], settings.instance, settings.stream_maxlen
        )
        app[JANITOR] = janitor
        supervisor.start("janitor", janitor.run, stop=janitor.stop)
    if app[CONFIG].retention_interval_ms > 0:
        pruner = Pruner(app[PG], app[CONFIG])
        app[PRUNER] = pruner
        supervisor.start("pruner", pruner.run, stop=pruner.stop)
    if app[CONFIG].rollup_prune_interval_ms > 0:
        pool, config = app[PG], app[CONFIG]
        supervisor.start("rollup-retention", lambda: retention.run(pool, config))
    yield
    # The consumer finishes and acks the batch in hand; the janitor its pass.
    await supervisor.stop(grace_s=SHUTDOWN_GRACE_S)
    with contextlib.suppress(RedisError, OSError):
        await recorder.publish_lag()


async def lag_handler(request: web.Request) -> web.Response:
    """How far Postgres is behind the event stream, as JSON."""
    try:
        lag = await request.app[RECORDER].lag()
    except (RedisError, OSError) as exc:
        return problem(503, f"redis unavailable: {exc.__class__.__name__}")
    body = {**lag.__dict__, "behind": lag.behind, "recorded": request.app[RECORDER].recorded}
    return web.json_response(body)
