"""Dashboard under load: the overview and the jobs page open in headless Chromium while
traffic runs at 1,000 jobs/s through the whole stack (processes behind nginx).

Traffic: BENCH_RATE no-op jobs/s over two queues, plus BENCH_LONG_JOBS long jobs on a third
queue, each reporting progress twice a second for the whole run. The overview watches every
queue's stats (``subscribeStats``); the jobs page lists the running long jobs, whose rows move
live (``subscribeJob`` per row).

Measures, per page, over the measured window:
- event-to-screen latency: from an event's publish time (``ts``) to the animation frame
  after the page rendered the batch holding it (the page records these in
  ``jobdeckLive.latencies()``); p50 / p95 / max;
- the tab's main-thread CPU: Chrome's ``TaskDuration`` (DevTools Performance metrics)
  over the window, as a share of one core;
- long tasks (PerformanceObserver ``longtask``): how many, and the longest;
- what the page does per batch: batches rendered per second, the render time of a batch
  (p95 / max, ``jobdeckLive.latencies('render')``), REST requests made during the window;
- the gateway's side: the age of each stats snapshot (from its ``ts``, when measuring
  began) when handed to the sockets (``jobdeck_gateway_stats_age_seconds``), and the time
  from each stream event's publication to its hand-off to the sockets
  (``jobdeck_gateway_publish_to_emit_seconds``, every event read, watched or not): what of
  publish-to-arrival is spent before the gateway's hand-off, and what after it.
Prints ONE summary line (and the per-page figures above it).

Env: BENCH_RATE (1000 jobs/s), BENCH_SECONDS (60), BENCH_WARMUP_S (5), BENCH_LONG_JOBS (50),
JOBDECK_DATABASE_URL's server (the bench makes and drops its own database
``jobdeck_bench_issue13``); Redis is a private redis-server on a free port.
Targets (issue 13): p95 <= 500 ms, no main-thread task longer than 200 ms.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from jobdeck.auth import mint_token
from jobdeck.db import migrate
from jobdeck.queues import JobSpec, QueueClient
from jobdeck.settings import Settings
from playwright.async_api import Page, async_playwright
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.dashboard import WIDE, launch_chromium
from tests.support.dashboard import start_stack as start_dashboard_stack
from tests.support.processes import free_port

RATE = float(os.environ.get("BENCH_RATE", 1000))
SECONDS = float(os.environ.get("BENCH_SECONDS", 60))
WARMUP = float(os.environ.get("BENCH_WARMUP_S", 5))
LONG_JOBS = int(os.environ.get("BENCH_LONG_JOBS", 50))
SECRET = "bench-dashboard-secret-0123456789abcdef"
DB_NAME = "jobdeck_bench_issue13"
ADMIN_DSN = os.environ.get("JOBDECK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jobdeck")
QUEUES = ("bench-a", "bench-b")
GATEWAY_HISTOGRAMS = (
    "jobdeck_gateway_stats_age_seconds",
    "jobdeck_gateway_publish_to_emit_seconds",
)
LONG_QUEUE = "bench-long"
LONG_TASKS = """
performance.setResourceTimingBufferSize(100000);
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: 'longtask', buffered: true });
"""


def dsn(name: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def fresh_database() -> str:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()
    await migrate(dsn(DB_NAME))
    return dsn(DB_NAME)


async def drop_database() -> None:
    conn = await asyncpg.connect(dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    finally:
        await conn.close()


def job(rng: random.Random) -> JobSpec:
    return JobSpec(queue=rng.choice(QUEUES), name="noop")


def long_job(seconds: float) -> JobSpec:
    return JobSpec(
        queue=LONG_QUEUE, name="sleep", data={"seconds": seconds, "steps": int(seconds * 2)}
    )


async def traffic(client: QueueClient, until: float) -> int:
    """Enqueue RATE jobs/s in batches every 50 ms until ``until``."""
    rng = random.Random(13)
    sent = 0
    started = time.monotonic()
    while time.monotonic() < until:
        due = int((time.monotonic() - started) * RATE) - sent
        if due > 0:
            await client.enqueue_many([job(rng) for _ in range(due)], by="bench")
            sent += due
        await asyncio.sleep(0.05)
    return sent


async def all_running(database_url: str) -> None:
    """Until the long jobs are recorded as active, so the jobs page lists them all."""
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(600):
            n = await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE queue = $1 AND status = 'active'", LONG_QUEUE
            )
            if n >= LONG_JOBS:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"only {n} of {LONG_JOBS} long jobs are running")
    finally:
        await conn.close()


async def task_seconds(cdp: Any) -> float:
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


Histogram = tuple[list[tuple[float, float]], float, float]  # buckets (le, count), sum, count


async def histogram(url: str, name: str) -> Histogram:
    """One of the gateway's histograms, from /metrics: cumulative buckets, sum, count."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
        elif line.startswith(name + "_sum "):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count "):
            count = float(line.rsplit(" ", 1)[1])
    return buckets, total, count


def since(end: Histogram, start: Histogram) -> str:
    """Count, mean and bucket p95 of what a histogram observed between two readings."""
    count, total = end[2] - start[2], end[1] - start[1]
    if not count:
        return "none"
    before = dict(start[0])
    p95 = next(le for le, n in end[0] if n - before.get(le, 0.0) >= 0.95 * count)
    return f"{count:.0f}, mean {total / count * 1000:.0f} ms, p95 <= {p95 * 1000:.0f} ms"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """A private redis-server, so the bench's million events never touch a shared one."""
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="jobdeck-bench-dashboard-"))
    redis_port = free_port()
    redis_proc = start_redis(redis_port)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis = Redis.from_url(redis_url)
    stack = None
    try:
        for _ in range(100):
            try:
                await redis.ping()
                break
            except Exception:
                await asyncio.sleep(0.05)
        settings = Settings(database_url=await fresh_database(), redis_url=redis_url)
        stack = await start_dashboard_stack(
            settings,
            work,
            SECRET,
            [
                "--tasks",
                "jobdeck_worker.demo",
                "--queue",
                f"{QUEUES[0]}:100",
                "--queue",
                f"{QUEUES[1]}:100",
                "--queue",
                f"{LONG_QUEUE}:{LONG_JOBS}",
            ],
            {"JOBDECK_LOG_LEVEL": "ERROR"},
        )
        token = mint_token(SECRET, "bench", ["admin"], "*", 3600)
        client = QueueClient(redis, settings.stream_maxlen)
        await client.enqueue_many([JobSpec(queue=q, name="noop") for q in QUEUES], by="bench")
        run_s = WARMUP + SECONDS + 30  # the long jobs outlast the page set-up and the window
        await client.enqueue_many([long_job(run_s) for _ in range(LONG_JOBS)], by="bench")
        await all_running(settings.database_url)
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            pages: dict[str, Page] = {}
            jobs_route = f"#/jobs?status=active&queues={LONG_QUEUE}&limit=100"
            for name, route in (("overview", "#/overview"), ("jobs", jobs_route)):
                context = await browser.new_context(viewport=WIDE)  # type: ignore[arg-type]
                await context.add_init_script(LONG_TASKS)
                page = await context.new_page()
                await page.goto(f"{stack.url}/#token={token}")
                await page.goto(f"{stack.url}/{route}")
                await page.wait_for_selector("#live:text('live')")
                pages[name] = page
            cdps = {n: await p.context.new_cdp_session(p) for n, p in pages.items()}
            for cdp in cdps.values():
                await cdp.send("Performance.enable")

            load = asyncio.create_task(traffic(client, time.monotonic() + WARMUP + SECONDS))
            await asyncio.sleep(WARMUP)
            marks = {}
            for n, p in pages.items():
                await p.evaluate(
                    "() => { window.__longTasks = []; jobdeckLive.latencyCount = 0;"
                    " jobdeckLive.arrivalCount = 0; jobdeckLive.flushes = 0;"
                    " window.__mark = performance.now(); }"
                )
                marks[n] = (await task_seconds(cdps[n]), time.monotonic())
            gateway = next(proc for proc in stack.processes if proc.module == "jobdeck_gateway")
            gateway_start = [await histogram(gateway.url, name) for name in GATEWAY_HISTOGRAMS]
            sent = await load
            lines = []
            worst_p95 = 0.0
            longest = 0.0
            gateway_end = [await histogram(gateway.url, name) for name in GATEWAY_HISTOGRAMS]
            pairs = zip(gateway_end, gateway_start, strict=True)
            snapshots, handed = (since(end, start) for end, start in pairs)
            lines.append(
                f"gateway: stats snapshots (age when handed to the sockets) {snapshots}; "
                f"stream events (publish to hand-off) {handed}"
            )
            for n, p in pages.items():
                elapsed = time.monotonic() - marks[n][1]
                cpu = (await task_seconds(cdps[n]) - marks[n][0]) / elapsed
                lat = await p.evaluate("() => jobdeckLive.latencies('screen')")
                arrival = await p.evaluate("() => jobdeckLive.latencies('arrival')")
                render = await p.evaluate("() => jobdeckLive.latencies('render')")
                rest = await p.evaluate(
                    "() => performance.getEntriesByType('resource').filter((e) =>"
                    " e.name.includes('/api/') && e.startTime > window.__mark).length"
                )
                longs = await p.evaluate("() => window.__longTasks")
                p95 = pct(lat, 0.95)
                worst_p95 = max(worst_p95, p95)
                longest = max([longest, *longs])
                lines.append(
                    f"{n}: events {len(lat)}; publish-to-screen p50 {pct(lat, 0.5):.0f} ms "
                    f"p95 {p95:.0f} ms max {max(lat, default=0):.0f} ms (publish-to-arrival "
                    f"p50 {pct(arrival, 0.5):.0f} ms p95 {pct(arrival, 0.95):.0f} ms); "
                    f"tab CPU {cpu * 100:.0f}% of a core; "
                    f"long tasks {len(longs)} (longest {max(longs, default=0):.0f} ms); "
                    f"batches {len(render) / elapsed:.1f}/s, render p95 {pct(render, 0.95):.1f} ms "
                    f"max {max(render, default=0):.1f} ms; REST requests {rest}"
                )
            await browser.close()
        for line in lines:
            print(line)
        load_avg = os.getloadavg()[0]
        print(
            f"dashboard: {sent / (SECONDS + WARMUP):.0f} jobs/s for {SECONDS:.0f} s; "
            f"event-to-screen p95 {worst_p95:.0f} ms (target <= 500); longest main-thread "
            f"task {longest:.0f} ms (target <= 200); load avg {load_avg:.1f}"
        )
    finally:
        if stack is not None:
            stack.stop()
        await redis.aclose()
        redis_proc.terminate()
        redis_proc.wait(10)
        await drop_database()


if __name__ == "__main__":
    asyncio.run(main())
