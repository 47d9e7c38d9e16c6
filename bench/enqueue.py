"""Enqueue benchmark: jobs/s through ``POST /api/v1/jobs`` one at a time (concurrency 8)
and through ``POST /api/v1/jobs/bulk`` (1,000 jobs a call, 2 calls in flight).

Runs ``python -m jobdeck_api`` against a scratch database ``jobdeck_bench_enqueue`` and a
Redis database leased for the run (``redis_meter.leased_db``, flushed before and after) on
``JOBDECK_BENCH_REDIS`` (redis://127.0.0.1:6379). Prints one summary line.

    .venv/bin/python bench/enqueue.py [--single 4000] [--bulk-calls 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from api_process import start_api
from jobdeck.auth import mint_token
from jobdeck.db import ensure_database, migrate
from jobdeck.queues import queue_key
from redis.asyncio import Redis
from redis_meter import leased_db

PG_BASE = os.environ.get("JOBDECK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB_URL = f"{PG_BASE}/jobdeck_bench_enqueue"
REDIS_BASE = os.environ.get("JOBDECK_BENCH_REDIS", "redis://127.0.0.1:6379")
SECRET = "jobdeck-bench-secret-0123456789abcdef0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def lanes(n: int, concurrency: int, once: Any) -> float:
    remaining = iter(range(n))

    async def lane() -> None:
        for i in remaining:
            await once(i)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single", type=int, default=4000)
    parser.add_argument("--bulk-calls", type=int, default=40)
    args = parser.parse_args()
    async with leased_db(REDIS_BASE) as redis_url:
        await run(args, redis_url)


async def run(args: argparse.Namespace, redis_url: str) -> None:
    await ensure_database(DB_URL)
    await migrate(DB_URL)
    port = free_port()
    proc = start_api(
        DB_URL, redis_url, port, SECRET, Path("/tmp") / f"bench-enqueue-api-{port}.log"
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'bench', ['operator'])}"}
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:
            for _ in range(200):
                try:
                    async with http.get(base + "/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

            async def single(i: int) -> None:
                body = {"queue": queue, "name": "noop", "data": {"i": i}}
                async with http.post(base + "/api/v1/jobs", json=body, headers=headers) as r:
                    assert r.status == 201, await r.text()

            async def bulk(i: int) -> None:
                jobs = [{"queue": queue, "name": "noop", "data": {"i": j}} for j in range(1000)]
                async with http.post(
                    base + "/api/v1/jobs/bulk", json={"jobs": jobs}, headers=headers
                ) as r:
                    assert r.status == 201, await r.text()

            await lanes(50, 8, single)  # warm-up
            await lanes(2, 2, bulk)
            single_s = await lanes(args.single, 8, single)
            bulk_s = await lanes(args.bulk_calls, 2, bulk)
        queued = await redis.zcard(queue_key(queue))
    finally:
        proc.terminate()
        proc.wait(15)
        await redis.aclose()
    single_rate = args.single / single_s
    bulk_rate = args.bulk_calls * 1000 / bulk_s
    print(
        f"enqueue bench: single POST /api/v1/jobs at concurrency 8: {single_rate:,.0f} jobs/s"
        f" ({args.single} jobs); bulk POST /api/v1/jobs/bulk 1,000/call, 2 in flight:"
        f" {bulk_rate:,.0f} jobs/s ({args.bulk_calls} calls, {bulk_s * 1000 / args.bulk_calls:.0f}"
        f" ms/call); {queued:,} jobs queued in Redis (target bulk >= 10,000 jobs/s)"
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
