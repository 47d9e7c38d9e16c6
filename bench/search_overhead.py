"""The API's own cost per search, one request at a time (no queueing, no contention).

Starts ``python -m jobdeck_api`` on the bench database (``JOBDECK_BENCH_DB``, seeded by
bench/search.py) and times ``--requests`` searches of a few typical queries in a row, after
a warm-up, with ``GET /healthz`` as the HTTP floor; p50/min per query. Light (a few seconds
of CPU): for comparing two versions of the API side by side on the same data.

    JOBDECK_BENCH_DB=jobdeck_bench_10m .venv/bin/python bench/search_overhead.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from urllib.parse import urlencode

from api_process import start_api
from jobdeck.auth import mint_token
from redis_meter import leased_db
from search import (
    DB_URL,
    SECRET,
    HttpConnection,
    as_multidict,
    free_port,
    queries,
    wait_ready,
)

QUERIES = ("seed example", "queue+status by finished", "week, slow, by duration")


async def timed(conn: HttpConnection, target: str, n: int) -> list[float]:
    ms = []
    for _ in range(n):
        started = time.perf_counter()
        status, body = await conn.get(target)
        ms.append((time.perf_counter() - started) * 1000)
        assert status == 200, body
    return ms


async def main(redis_url: str, requests: int) -> None:
    port = free_port()
    log = Path("/tmp") / f"bench-search-overhead-{port}.log"
    proc = start_api(DB_URL, redis_url, port, SECRET, log)
    token = mint_token(SECRET, "bench", ["viewer"])
    conn = HttpConnection("127.0.0.1", port, {"Authorization": f"Bearer {token}"})
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        parts = []
        for name in QUERIES:
            target = "/api/v1/jobs/search?" + urlencode(as_multidict(queries("")[name]))
            await timed(conn, target, 20)
            ms = await timed(conn, target, requests)
            parts.append(f"{name}: p50 {statistics.median(ms):.2f}/min {min(ms):.2f} ms")
        floor = await timed(conn, "/healthz", requests)
        print(
            f"one at a time, {requests} each: "
            + "; ".join(parts)
            + f"; GET /healthz p50 {statistics.median(floor):.2f} ms"
        )
    finally:
        await conn.close()
        proc.terminate()
        proc.wait(15)


async def leased_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    async with leased_db(os.environ.get("JOBDECK_BENCH_REDIS", "redis://127.0.0.1:6379")) as url:
        await main(url, args.requests)


if __name__ == "__main__":
    asyncio.run(leased_main())
