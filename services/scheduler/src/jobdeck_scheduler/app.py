"""The scheduler's HTTP side (ops routes) and its background loops."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from jobdeck.queues import QueueClient
from jobdeck.settings import Settings
from jobdeck.supervise import supervise
from jobdeck.usage import use_usage_sampler
from jobdeck.web import PG, READY_CHECKS, REDIS, SETTINGS, create_app, use_postgres, use_redis

from jobdeck_scheduler.config import SchedulerConfig
from jobdeck_scheduler.firing import Firer
from jobdeck_scheduler.loop import Scheduler

CONFIG = web.AppKey("scheduler_config", SchedulerConfig)
SCHEDULER = web.AppKey("scheduler", Scheduler)
FIRING = "scheduler-firing"


def build_app(settings: Settings, config: SchedulerConfig) -> web.Application:
    app = create_app(settings)
    app[CONFIG] = config
    use_redis(app)
    use_usage_sampler(app, "scheduler")
    # A replica stuck inside a transaction (stopped, partitioned) must not keep its claimed
    # rows: Postgres ends such a session, and the other replicas take the rows over.
    use_postgres(
        app,
        min_size=0,
        max_size=config.pg_pool_size,
        command_timeout=30,
        server_settings={
            "idle_in_transaction_session_timeout": str(config.idle_in_transaction_ms),
            "application_name": settings.instance,
        },
    )
    app.cleanup_ctx.append(_scheduler)
    return app


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    settings, config = app[SETTINGS], app[CONFIG]
    queues = QueueClient(app[REDIS], settings.stream_maxlen)
    firer = Firer(app[PG], queues, config, settings.instance)
    scheduler = Scheduler(
        firer, app[PG], app[REDIS], config, settings.database_url, settings.stream_maxlen
    )
    app[SCHEDULER] = scheduler

    async def check() -> None:
        if not scheduler.healthy:
            raise RuntimeError(scheduler.last_error or "scheduler has not ticked yet")

    app[READY_CHECKS]["scheduler"] = check
    # /readyz fails while one of the three is dead, and each is restarted.
    supervisor = supervise(app)
    supervisor.start(FIRING, scheduler.run_firing, stop=scheduler.stop)
    supervisor.start("scheduler-listen", scheduler.run_listener)
    supervisor.start("scheduler-outcomes", scheduler.run_outcomes)
    yield
    # The tick in hand commits (or rolls back) before the pool closes; the others are cancelled.
    await supervisor.stop(grace_s=10, names=[FIRING, "scheduler-listen", "scheduler-outcomes"])
