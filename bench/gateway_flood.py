"""Gateway under an unauthenticated flood: does its memory come back afterwards?

Starts ``python -m jobdeck_gateway`` as its own process with the production defaults (a
10 s join deadline, 25 s pings, 20 s ping timeout, at most 5,000 unjoined sessions) except
the per-address bounds, lifted because every handshake comes from this machine. A warm-up
of 400 handshakes, then BENCH_ROUNDS rounds of BENCH_HANDSHAKES polling handshakes (50 at
a time) that never join ``/jobs``; after each round it waits for every session to be
closed, then BENCH_SETTLE_S for the sweeps that give memory back. Prints ONE summary line:
RSS at start, after the warm-up (the baseline), the sessions opened and refused (503,
the cap on unjoined sessions), the peak and the settled RSS of each round, the
compactions counted, the handshake rate and the load average.

    flock /work/wt/heavy.lock .venv/bin/python bench/gateway_flood.py

Env: BENCH_HANDSHAKES (20000, the issue's probe), BENCH_ROUNDS (3), BENCH_SETTLE_S (60),
BENCH_JOIN_TIMEOUT_S (10), BENCH_MAX_UNJOINED (the gateway's cap on unjoined sessions;
default: the gateway's own, 5,000; e.g. 100000 to have every handshake open a session),
JOBDECK_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/
jobdeck), BENCH_REDIS (default: a private redis-server). Target (issue 11): the settled
RSS of every round within 10 % of the baseline, whatever the peak.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from jobdeck.db import ensure_database, migrate
from jobdeck.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for
from tests.support.unauthenticated import handshakes, metric, rss_bytes

HANDSHAKES = int(os.environ.get("BENCH_HANDSHAKES", 20000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", 60))
JOIN_TIMEOUT_S = os.environ.get("BENCH_JOIN_TIMEOUT_S", "10")
CAP = (
    {"JOBDECK_GATEWAY_MAX_UNJOINED_SESSIONS": os.environ["BENCH_MAX_UNJOINED"]}
    if os.environ.get("BENCH_MAX_UNJOINED")
    else {}
)
DATABASE_URL = os.environ.get(
    "JOBDECK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jobdeck"
)
SECRET = "bench-gateway-flood-secret-0123456789abcdef"
MB = 1024 * 1024


def private_redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("BENCH_REDIS"):
        return os.environ["BENCH_REDIS"], None
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return f"redis://127.0.0.1:{port}/0", proc


async def peak_while(pid: int, work: asyncio.Future[object]) -> int:
    """The highest RSS of ``pid`` sampled (every 0.1 s) until ``work`` is done."""
    peak = rss_bytes(pid)
    while not work.done():
        peak = max(peak, rss_bytes(pid))
        await asyncio.sleep(0.1)
    return max(peak, rss_bytes(pid))


async def main() -> None:
    load0 = os.getloadavg()[0]
    redis_url, redis_proc = private_redis()
    await ensure_database(DATABASE_URL)
    await migrate(DATABASE_URL)
    port = free_port()
    env = settings_env(
        Settings(database_url=DATABASE_URL, redis_url=redis_url, jwt_secret=SECRET),
        JOBDECK_GATEWAY_PORT=str(port),
        JOBDECK_LOG_LEVEL="WARNING",
        JOBDECK_GATEWAY_JOIN_TIMEOUT_S=JOIN_TIMEOUT_S,
        JOBDECK_GATEWAY_HANDSHAKE_BURST=str(HANDSHAKES * 4),
        JOBDECK_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=str(HANDSHAKES * 2),
        **CAP,
    )
    gateway = ServiceProcess("jobdeck_gateway", env, port, Path("/tmp")).start()
    try:
        await gateway.wait_ready(60)
        assert gateway.proc is not None
        pid = gateway.proc.pid
        start = rss_bytes(pid)
        rounds: list[str] = []
        rates: list[float] = []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as http:

            async def drained() -> bool:
                return await metric(http, gateway.url, "jobdeck_gateway_engine_sessions") == 0

            async def flood(n: int) -> None:
                await handshakes(http, gateway.url, n)
                await wait_for(drained, timeout=600, interval=0.5, what="sessions to close")

            await flood(400)
            await asyncio.sleep(SETTLE_S)
            baseline = rss_bytes(pid)
            for _ in range(ROUNDS):
                t0 = time.monotonic()
                work = asyncio.ensure_future(handshakes(http, gateway.url, HANDSHAKES))
                peak = await peak_while(pid, work)
                opened = len(work.result())
                rates.append(HANDSHAKES / (time.monotonic() - t0))
                closing = asyncio.ensure_future(
                    wait_for(drained, timeout=600, interval=0.5, what="sessions to close")
                )
                peak = max(peak, await peak_while(pid, closing))
                await asyncio.sleep(SETTLE_S)
                settled = rss_bytes(pid)
                rounds.append(
                    f"{opened} opened, {HANDSHAKES - opened} refused,"
                    f" peak {peak / MB:.1f}, settled {settled / MB:.1f} MB"
                    f" ({100 * (settled - baseline) / baseline:+.1f} %)"
                )
            compactions = await metric(http, gateway.url, "jobdeck_gateway_compactions_total")
    finally:
        gateway.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(5)
    print(
        f"gateway flood: {ROUNDS} x {HANDSHAKES} unjoined polling handshakes"
        f" (~{min(rates):.0f}-{max(rates):.0f}/s, join deadline {JOIN_TIMEOUT_S} s,"
        f" cap {CAP.get('JOBDECK_GATEWAY_MAX_UNJOINED_SESSIONS', 'default')}):"
        f" RSS start {start / MB:.1f} MB, baseline after warm-up {baseline / MB:.1f} MB; "
        + "; ".join(f"round {i + 1}: {r}" for i, r in enumerate(rounds))
        + f"; compactions {compactions:.0f}; load {load0:.2f} to {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
