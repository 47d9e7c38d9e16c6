"""Gateway fan-out benchmark: 2,000 socket.io clients over 20 queue rooms, 2,000 events/s.

Starts ``python -m jobdeck_gateway`` as its own process, connects the clients from a few
node processes (``tests/node``; websocket transport): by default lean clients speaking the
Socket.IO protocol over ``ws`` (``bench-ws-clients.mjs``), so the 2-core machine's CPU goes
to the gateway rather than to client-side parsing; ``BENCH_CLIENT=socket.io-client`` uses
the real npm client instead (``bench-clients.mjs``),
publishes ``progress`` events into the stream at a steady rate (each reaches the 100
clients of its queue's room as ``jobProgress``), then prints ONE summary line:
delivered/expected, publish-to-receive p50/p99 (event ``ts`` → client receive, ms), the
gateway's CPU (share of one core over the publishing window) and peak RSS.

Env overrides: BENCH_CLIENTS (2000), BENCH_QUEUES (20), BENCH_RATE (2000 events/s),
BENCH_SECONDS (30), BENCH_NODE_PROCS (2), BENCH_CLIENT (ws | socket.io-client), BENCH_REDIS (a
private redis-server; or a server's URL, redis://127.0.0.1:6379, to lease a database on),
JOBDECK_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/jobdeck), BENCH_GATEWAY_CMD
(python arguments that start the gateway, "-m jobdeck_gateway"; e.g. a profiling wrapper).
Targets (issue 4): 100% delivered, p99 <= 100 ms, <= 100 KB of gateway memory per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from jobdeck.auth import mint_token
from jobdeck.db import ensure_database, migrate
from jobdeck.events import Event, EventType, encode
from jobdeck.streams import EVENT_FIELD, EVENTS
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis_meter import leased_db

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"
SECRET = "bench-gateway-secret-0123456789abcdef"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

CLIENTS = int(os.environ.get("BENCH_CLIENTS", 2000))
QUEUES = int(os.environ.get("BENCH_QUEUES", 20))
RATE = int(os.environ.get("BENCH_RATE", 2000))
SECONDS = float(os.environ.get("BENCH_SECONDS", 30))
NODE_PROCS = int(os.environ.get("BENCH_NODE_PROCS", 2))
CLIENT_KIND = os.environ.get("BENCH_CLIENT", "ws")
CLIENT_SCRIPT = {"ws": "bench-ws-clients.mjs", "socket.io-client": "bench-clients.mjs"}[CLIENT_KIND]
REDIS_BASE = os.environ.get("BENCH_REDIS", "")  # default: a private redis-server
DATABASE_URL = os.environ.get(
    "JOBDECK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jobdeck"
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class NodeProc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                sys.stderr.write(raw.decode(errors="replace")[:500])

    def last(self, kind: str) -> dict[str, Any] | None:
        found = [x for x in self.lines if x.get("kind") == kind]
        return found[-1] if found else None


async def wait_until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def percentile(hist: dict[int, int], total: int, p: float) -> int:
    target, seen = total * p, 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= target:
            return ms
    return max(hist) if hist else 0


async def gateway_metrics(url: str) -> tuple[str, str, int, int]:
    """From the gateway's /metrics: hand-off latency bucket bounds at p50/p99, drops."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    dropped = handed = 0
    for line in text.splitlines():
        if line.startswith("jobdeck_gateway_dropped_messages_total "):
            dropped = int(float(line.rsplit(" ", 1)[1]))
        if line.startswith('jobdeck_gateway_events_emitted_total{event="jobProgress"}'):
            handed = int(float(line.rsplit(" ", 1)[1]))
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith("jobdeck_gateway_publish_to_emit_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0

    def bound(p: float) -> str:
        for le, count in buckets:
            if count >= total * p:
                return "inf" if le == float("inf") else f"{le * 1000:g}"
        return "?"

    return bound(0.5), bound(0.99), dropped, handed


async def publish(redis: Redis, queues: list[str]) -> int:
    """RATE events/s for SECONDS, in 10 ms batches paced against the wall clock."""
    total = int(RATE * SECONDS)
    batch_every = 0.01
    per_batch = max(1, int(RATE * batch_every))
    sent, n = 0, 0
    start = time.monotonic()
    while sent < total:
        due = start + n * batch_every
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now_ms = int(time.time() * 1000)
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(min(per_batch, total - sent)):
                event = Event(
                    type=EventType.PROGRESS,
                    queue=queues[sent % len(queues)],
                    job_id=f"bench-{sent}",
                    attempt=1,
                    name="bench",
                    ts=now_ms,
                    fields={"progress": 50, "message": None},
                )
                pipe.xadd(EVENTS, {EVENT_FIELD: encode(event)}, maxlen=200_000, approximate=True)
                sent += 1
            await pipe.execute()
        n += 1
    return sent


@contextlib.asynccontextmanager
async def bench_redis() -> AsyncIterator[str]:
    """A private redis-server of the bench's own, or with ``BENCH_REDIS`` (a server's URL)
    a database leased on that server (``redis_meter.leased_db``)."""
    if REDIS_BASE:
        async with leased_db(REDIS_BASE) as url:
            yield url
        return
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before the clock starts)
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                probe = Redis.from_url(url)
                await probe.ping()
                await probe.aclose()
                break
            except (OSError, RedisError):
                await asyncio.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def main() -> None:
    load0 = os.getloadavg()[0]
    async with bench_redis() as redis_url:
        await run(redis_url, load0)


async def run(redis_url: str, load0: float) -> None:
    await ensure_database(DATABASE_URL)
    await migrate(DATABASE_URL)
    redis = Redis.from_url(redis_url)
    port = free_port()
    env = {
        **os.environ,
        "JOBDECK_DATABASE_URL": DATABASE_URL,
        "JOBDECK_REDIS_URL": redis_url,
        "JOBDECK_JWT_SECRET": SECRET,
        "JOBDECK_GATEWAY_PORT": str(port),
        "JOBDECK_LOG_LEVEL": "WARNING",
        # Every bench client comes from this machine with one token: lift the per-address
        # and per-token bounds that protect a production gateway.
        "JOBDECK_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
        "JOBDECK_GATEWAY_HANDSHAKE_BURST": "1000000",
        "JOBDECK_GATEWAY_MAX_CONNECTIONS_PER_TOKEN": "1000000",
    }
    log = open("/tmp/jobdeck-bench-gateway.log", "wb")  # noqa: SIM115, ASYNC230
    gateway = subprocess.Popen(  # noqa: ASYNC220 (started once, before the clock starts)
        [sys.executable, *os.environ.get("BENCH_GATEWAY_CMD", "-m jobdeck_gateway").split()],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    nodes: list[NodeProc] = []
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(url + "/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            deadline = time.monotonic() + 30
            while not await ready():
                if time.monotonic() > deadline or gateway.poll() is not None:
                    raise RuntimeError("gateway did not start; see /tmp/jobdeck-bench-gateway.log")
                await asyncio.sleep(0.1)
        baseline_rss = rss_bytes(gateway.pid)
        queues = [f"bench-{i:02d}" for i in range(QUEUES)]
        token = mint_token(SECRET, "bench", ["viewer"], queues, ttl_s=3600)
        per_proc = [CLIENTS // NODE_PROCS + (i < CLIENTS % NODE_PROCS) for i in range(NODE_PROCS)]
        offset = 0
        for count in per_proc:
            cfg = {"url": url, "token": token, "queues": queues, "clients": count, "offset": offset}
            offset += count
            proc = await asyncio.create_subprocess_exec(
                "node",
                str(NODE_DIR / CLIENT_SCRIPT),
                json.dumps(cfg),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=NODE_DIR,
                limit=1 << 24,
            )
            nodes.append(NodeProc(proc))
        await wait_until(lambda: all(n.last("ready") for n in nodes), 120, "clients to subscribe")
        failed = sum(n.last("ready")["failed"] for n in nodes)  # type: ignore[index]
        if failed:
            raise RuntimeError(f"{failed} clients failed to connect or subscribe")
        connected_rss = rss_bytes(gateway.pid)
        peak_rss = connected_rss
        cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()

        async def sample() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, rss_bytes(gateway.pid))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        sent = await publish(redis, queues)
        cpu1, t1 = cpu_seconds(gateway.pid), time.monotonic()
        clients_in = [sum(1 for i in range(CLIENTS) if i % QUEUES == q) for q in range(QUEUES)]
        events_in = [sum(1 for k in range(sent) if k % QUEUES == q) for q in range(QUEUES)]
        expected = sum(c * e for c, e in zip(clients_in, events_in, strict=True))

        def received() -> int:
            return sum((n.last("progress") or {"received": 0})["received"] for n in nodes)

        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: received() >= expected, 30, "deliveries to settle")
        sampler.cancel()
        emit_p50, emit_p99, dropped, handed = await gateway_metrics(url)
        for n in nodes:
            assert n.proc.stdin is not None
            n.proc.stdin.close()
        for n in nodes:
            await n.proc.wait()
            await n.reader
        hist: dict[int, int] = {}
        delivered = 0
        for n in nodes:
            summary = n.last("summary") or {"received": 0, "hist": {}}
            delivered += summary["received"]
            for ms, count in summary["hist"].items():
                hist[int(ms)] = hist.get(int(ms), 0) + count
        cpu_share = (cpu1 - cpu0) / (t1 - t0)
        print(
            f"gateway: {CLIENTS} {CLIENT_KIND} clients / {QUEUES} rooms, "
            f"{sent / (t1 - t0):.0f} events/s for {t1 - t0:.1f}s: delivered {delivered}/{expected} "
            f"({100 * delivered / max(expected, 1):.2f}%), "
            f"publish-to-receive p50 {percentile(hist, delivered, 0.5)} ms "
            f"p99 {percentile(hist, delivered, 0.99)} ms "
            f"max {max(hist) if hist else 0} ms (gateway hand-off p50 <= {emit_p50} ms "
            f"p99 <= {emit_p99} ms, {dropped} dropped, {handed} handed to sockets), "
            f"gateway CPU {100 * cpu_share:.0f}% of a core, "
            f"RSS baseline {baseline_rss / 2**20:.0f} MB peak {peak_rss / 2**20:.0f} MB "
            f"({(peak_rss - baseline_rss) / CLIENTS / 1024:.0f} KB/client over baseline, "
            f"{peak_rss / CLIENTS / 1024:.0f} KB/client total), "
            f"machine load {load0:.1f} -> {os.getloadavg()[0]:.1f}"
        )
    finally:
        for n in nodes:
            if n.proc.returncode is None:
                n.proc.kill()
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
