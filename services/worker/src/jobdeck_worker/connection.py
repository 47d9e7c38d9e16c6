"""The Redis client of a worker process: arq's, able to add our writes to arq's transactions.

arq finishes a job in one MULTI/EXEC (result, queue, in-progress key). The job's final event
must be written in that same transaction, or a SIGKILL between the two would leave a
finished job whose row says "active" forever. Rather than copy arq's ``finish_job``, the
runtime sets ``FINISH_HOOK`` around arq's call; the next transaction that call opens starts
with the hook's commands. Context variables are per task, so concurrent jobs do not mix.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

PipelineHook = Callable[[Pipeline], None]

FINISH_HOOK: ContextVar[PipelineHook | None] = ContextVar("jobdeck_finish_hook", default=None)


class JobdeckRedis(ArqRedis):
    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = super().pipeline(transaction, shard_hint)
        hook = FINISH_HOOK.get()
        if hook is not None and transaction:
            hook(pipe)
        return pipe


def connect(redis_url: str) -> JobdeckRedis:
    # No health_check_interval: redis-py would then read the clock before every command, a
    # measurable cost per job; dead connections still surface as errors and are replaced.
    client: JobdeckRedis = JobdeckRedis.from_url(redis_url)
    return client
