"""The bare arq worker of ``bench/worker.py``'s baseline, tuned (``poll_delay=0.01``) so the
baseline is not arq's 0.5 s polling.

    .venv/bin/python bench/arq_worker.py REDIS_URL QUEUE CONCURRENCY
"""

from __future__ import annotations

import sys

from arq.connections import RedisSettings
from arq.worker import Worker, func

READY_KEY = "bench:arq-ready:"


async def noop(ctx: dict[str, object]) -> None:
    return None


def main(redis_url: str, queue: str, concurrency: int) -> None:
    async def ready(ctx: dict[str, object]) -> None:
        redis = ctx["redis"]
        await redis.set(READY_KEY + queue, 1)  # type: ignore[attr-defined]

    Worker(
        functions=[func(noop, name="noop")],
        queue_name=queue,
        redis_settings=RedisSettings.from_dsn(redis_url),
        max_jobs=concurrency,
        poll_delay=0.01,
        on_startup=ready,
        handle_signals=True,
    ).run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
