"""Demo traffic for ``make run``: a steady, varied trickle of jobs so there is always something
to watch (progress, logs, retries, failures, priorities) on the demo worker's queues.

    python -m jobdeck_worker.traffic [--rate 2.0] [--count N]

Queues match the demo worker in ``make run``: price-file-parser, emails, reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable

from jobdeck.logs import setup_logging
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.settings import Settings
from redis.asyncio import Redis

log = logging.getLogger("jobdeck_worker.traffic")
BY = "demo-traffic"
MALFORMED_PRICES = "sku,name,price,currency\nA-1,Mug,9.99,EUR\nA-2,Kettle,twelve,EUR\n"


def _price_file(rng: random.Random) -> JobSpec:
    if rng.random() < 0.1:
        data: dict[str, object] = {"content": MALFORMED_PRICES}
    else:
        data = {"path": "prices.csv", "chunk_rows": rng.choice([2, 5, 500])}
    return JobSpec(queue="price-file-parser", name="price-file-parser", data=data)


def _email(rng: random.Random) -> JobSpec:
    user = rng.choice(["ana", "bo", "chen", "dee", "eli"])
    return JobSpec(
        queue="emails",
        name="send-email",
        data={"to": f"{user}@example.com", "subject": "Your prices are ready", "delay": 0.3},
        priority=rng.choice([0, 0, 0, 5]),
        backoff_ms=500,
    )


def _report(rng: random.Random) -> JobSpec:
    return JobSpec(
        queue="reports",
        name="generate-report",
        data={"sections": rng.randint(3, 8), "section_s": 0.5},
        priority=rng.choice([0, 1, 10]),
    )


def _trouble(rng: random.Random) -> JobSpec:
    if rng.random() < 0.5:
        return JobSpec(queue="reports", name="flaky", data={"failures": 1}, backoff_ms=1000)
    return JobSpec(
        queue="emails", name="fail", data={"message": "SMTP relay refused"}, max_attempts=2
    )


MIX: list[tuple[float, Callable[[random.Random], JobSpec]]] = [
    (0.3, _price_file),
    (0.35, _email),
    (0.25, _report),
    (0.1, _trouble),
]


def next_job(rng: random.Random) -> JobSpec:
    roll, acc = rng.random(), 0.0
    for weight, make in MIX:
        acc += weight
        if roll < acc:
            return make(rng)
    return MIX[-1][1](rng)


async def run(settings: Settings, rate: float, count: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = Redis.from_url(settings.redis_url)
    client = QueueClient(redis, settings.stream_maxlen)
    rng = random.Random()
    sent = 0
    try:
        while not stop.is_set() and (count is None or sent < count):
            spec = next_job(rng)
            try:
                await client.enqueue(spec, by=BY)
                sent += 1
            except Exception as exc:  # Redis away for a moment: demo traffic just waits
                log.warning("enqueue failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.expovariate(rate))
    finally:
        await redis.aclose()
        log.info("demo traffic stopped", extra={"jobs": sent})


def main() -> None:
    parser = argparse.ArgumentParser(prog="jobdeck_worker.traffic", description=__doc__)
    parser.add_argument("--rate", type=float, default=2.0, help="jobs per second on average")
    parser.add_argument("--count", type=int, default=None, help="stop after this many jobs")
    args = parser.parse_args()
    settings = Settings.from_env("traffic")
    setup_logging("traffic", settings.log_level)
    log.info("demo traffic", extra={"rate": args.rate, "settings": settings.masked()})
    asyncio.run(run(settings, max(args.rate, 0.01), args.count))


if __name__ == "__main__":
    main()
