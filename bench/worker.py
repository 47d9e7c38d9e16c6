"""Worker runtime figures (issue 7): jobdeck next to BullMQ and bare arq, in the same run.

Every fleet runs as real processes on the same Redis server, one fleet at a time, with the same
concurrency per worker process, after a warm-up:

- pre-filled: ``--jobs`` no-op jobs queued while the fleet is paused; the clock runs from the
  resume until every job completed. jobdeck with 1 and 4 worker processes, one BullMQ worker
  process (npm ``bullmq``, ``bench/node``, its own key prefix), one bare arq worker tuned with
  ``poll_delay=0.01`` (arq has no pause: its jobs are renamed onto its queue in one step).
- trickle: ``--trickle-jobs`` jobs enqueued one at a time ``--gap-ms`` apart onto an idle fleet
  (jobdeck 1 and 4 workers, BullMQ); each job returns its enqueue-to-start latency.
- scale-out: jobs that wait ``--io-ms`` without CPU (I/O-bound), pre-filled, 4 jobdeck worker
  processes vs 1 (each fleet gets ``--scale-seconds`` of work at its ideal rate).

Measured per window: jobs/s; worker CPU per job (user + system time of the worker processes,
/proc); Redis commands per job (``CONFIG RESETSTAT`` then ``INFO commandstats``, commands inside
scripts included, the bench's own watching excluded) and Redis CPU per job (``INFO cpu``
used_cpu_sys + used_cpu_user delta). Redis figures include the producer's enqueue commands in
the trickle, not in the pre-filled runs. ``CONFIG RESETSTAT`` and ``INFO`` are server-wide:
other activity on a shared Redis lands in the window, so each window is corrected by the
quieter background rate of two ``--background-s`` samples, just before its fleet starts and
just after it stopped, and Redis figures are medians over ``--rounds``. Throughput is the best
round, CPU per job the median.

    .venv/bin/python bench/worker.py [--rounds 3] [--jobs 20000] [--concurrency 50]
        [--trickle-jobs 1000] [--gap-ms 5] [--io-ms 50] [--scale-seconds 3] [--quick]
        [--only throughput,trickle,scale] [--json out.json]

Each flag can also be set as ``BENCH_WORKER_<FLAG>`` (e.g. ``BENCH_WORKER_QUICK=1``). Leases a
Redis database of its own the way the test fixtures do (flushed before, between fleets, after).
Prints the figures, the issue's targets with pass/fail, and one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis_meter import RedisMeter, RedisUsage, leased_db, quieter
from worker_fleets import ArqFleet, BullmqFleet, JobdeckFleet, cpu_seconds, wait_quiet

PARTS = ("throughput", "trickle", "scale")


class Fleet(Protocol):
    label: str
    workers: int
    polls: int

    @property
    def pids(self) -> list[int]: ...

    async def start(self) -> None: ...
    async def warm_up(self, jobs: int) -> None: ...
    async def pause(self) -> None: ...
    async def fill(self, jobs: int, task: str, data: Any = None) -> None: ...
    async def resume(self) -> None: ...
    async def expect(self, jobs: int) -> None: ...
    async def wait_done(self, within: float = 300) -> None: ...
    async def stop(self) -> None: ...


class TrickleFleet(Fleet, Protocol):
    async def prepare_trickle(self, jobs: int, gap_ms: float) -> None: ...
    async def trickle(self, jobs: int, gap_ms: float) -> None: ...
    async def latencies_ms(self) -> list[float]: ...


@dataclass
class Sample:
    """One measured window of one fleet."""

    jobs: int
    seconds: float
    worker_cpu_s: float
    redis_raw: RedisUsage
    background: RedisUsage
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def redis(self) -> RedisUsage:
        return self.redis_raw.minus_background(self.background)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def worker_cpu_us(self) -> float:
        return self.worker_cpu_s / self.jobs * 1e6

    @property
    def redis_commands(self) -> float:
        return self.redis.commands / self.jobs

    @property
    def redis_cpu_us(self) -> float:
        return self.redis.cpu_s / self.jobs * 1e6


async def measure(
    redis: Redis,
    fleet: Fleet,
    args: argparse.Namespace,
    *,
    jobs: int,
    task: str = "noop",
    data: Any = None,
    trickle: bool = False,
) -> Sample:
    """Start ``fleet``, warm it up, run one window of ``jobs``, stop it, flush the database."""
    meter = RedisMeter(redis)
    background = await meter.background(args.background_s)  # and after: see ``quieter``
    try:
        await fleet.start()
        await fleet.warm_up(args.warm_up)
        if not trickle:
            await fleet.pause()
            await fleet.fill(jobs, task, data)
        else:
            assert isinstance(fleet, JobdeckFleet | BullmqFleet)
            await fleet.prepare_trickle(jobs, args.gap_ms)
            await wait_quiet(fleet.pids)
        await fleet.expect(jobs)
        polls = fleet.polls
        cpu = sum(cpu_seconds(p) for p in fleet.pids)
        await meter.start()
        started = time.perf_counter()
        if trickle:
            assert isinstance(fleet, JobdeckFleet | BullmqFleet)
            await fleet.trickle(jobs, args.gap_ms)
        else:
            await fleet.resume()
        await fleet.wait_done()
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(p) for p in fleet.pids) - cpu
        usage = await meter.stop(own_commands=fleet.polls - polls)
        if isinstance(fleet, JobdeckFleet):
            await fleet.verify()
        latencies: list[float] = []
        if trickle:
            assert isinstance(fleet, JobdeckFleet | BullmqFleet)
            latencies = await fleet.latencies_ms()
    finally:
        await fleet.stop()
        await redis.flushdb()
    after = await meter.background(args.background_s)
    return Sample(jobs, seconds, cpu, usage, quieter(background, after), latencies)


def _queue() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


async def run(args: argparse.Namespace, url: str) -> dict[str, list[Sample]]:
    redis = Redis.from_url(url)
    results: dict[str, list[Sample]] = {}
    conc, fleet_size = args.concurrency, args.fleet

    def jobdeck(workers: int) -> JobdeckFleet:
        return JobdeckFleet(redis, url, _queue(), workers, conc)

    async def record(key: str, sample: Sample) -> None:
        results.setdefault(key, []).append(sample)
        print(f"  {key}: {_describe(sample)}", flush=True)

    try:
        for r in range(args.rounds):  # interleaved, so every fleet sees the same machine load
            print(f"round {r + 1} of {args.rounds}", flush=True)
            if "throughput" in args.only:
                for key, make in (
                    ("prefilled bare-arq", lambda: ArqFleet(redis, url, _queue(), conc)),
                    ("prefilled jobdeck-1", lambda: jobdeck(1)),
                    (f"prefilled jobdeck-{fleet_size}", lambda: jobdeck(fleet_size)),
                    ("prefilled bullmq", lambda: BullmqFleet(url, _queue(), conc)),
                ):
                    await record(key, await measure(redis, make(), args, jobs=args.jobs))
            if "trickle" in args.only:
                trickles: list[tuple[str, Callable[[], TrickleFleet]]] = [
                    ("trickle jobdeck-1", lambda: jobdeck(1)),
                    (f"trickle jobdeck-{fleet_size}", lambda: jobdeck(fleet_size)),
                    ("trickle bullmq", lambda: BullmqFleet(url, _queue(), conc)),
                ]
                for key, make_trickle in trickles:
                    sample = await measure(
                        redis, make_trickle(), args, jobs=args.trickle_jobs, trickle=True
                    )
                    await record(key, sample)
            if "scale" in args.only:
                for workers in (1, fleet_size):
                    jobs = round(workers * conc * 1000 / args.io_ms * args.scale_seconds)
                    sample = await measure(
                        redis, jobdeck(workers), args, jobs=jobs, task="io", data={"ms": args.io_ms}
                    )
                    await record(f"io jobdeck-{workers}", sample)
    finally:
        await redis.aclose()
    return results


def _describe(s: Sample) -> str:
    text = (
        f"{s.rate:,.0f} jobs/s, worker CPU {s.worker_cpu_us:.0f} us/job, Redis "
        f"{s.redis_commands:.1f} commands and {s.redis_cpu_us:.0f} us CPU per job "
        f"(background {s.background.commands / s.background.seconds:,.0f} commands/s)"
    )
    if s.latencies_ms:
        text += f", enqueue-to-start p50 {_pct(s.latencies_ms, 50):.2f} ms"
        text += f" p99 {_pct(s.latencies_ms, 99):.2f} ms"
    return text


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p / 100), len(ordered) - 1)]


@dataclass(frozen=True)
class Check:
    what: str
    measured: float
    limit: float
    at_least: bool
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        verdict = "pass" if self.passed else "FAIL"
        return (
            f"  [{verdict}] {self.what}: {_num(self.measured)}{self.unit} "
            f"(target {sign} {_num(self.limit)}{self.unit})"
        )


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"


def report(results: dict[str, list[Sample]], args: argparse.Namespace) -> list[Check]:
    n = args.fleet

    def best_rate(key: str) -> float | None:
        return max(s.rate for s in results[key]) if key in results else None

    def median(key: str, get: Callable[[Sample], float]) -> float | None:
        return statistics.median(get(s) for s in results[key]) if key in results else None

    def cell(x: float | None, digits: int = 0) -> str:
        return "-" if x is None else f"{x:,.{digits}f}"

    columns = [("jobdeck x1", "jobdeck-1"), (f"jobdeck x{n}", f"jobdeck-{n}")]
    columns += [("BullMQ", "bullmq"), ("bare arq", "bare-arq")]
    rows: list[tuple[str, Callable[[str], str]]] = [
        ("no-op jobs/s, pre-filled (best)", lambda c: cell(best_rate(f"prefilled {c}"))),
        (
            "worker CPU us/job, pre-filled",
            lambda c: cell(median(f"prefilled {c}", lambda s: s.worker_cpu_us)),
        ),
        (
            "Redis commands/job, pre-filled",
            lambda c: cell(median(f"prefilled {c}", lambda s: s.redis_commands), 1),
        ),
        (
            "Redis CPU us/job, pre-filled",
            lambda c: cell(median(f"prefilled {c}", lambda s: s.redis_cpu_us)),
        ),
        (
            "Redis commands/job, trickle",
            lambda c: cell(median(f"trickle {c}", lambda s: s.redis_commands), 1),
        ),
        (
            "Redis CPU us/job, trickle",
            lambda c: cell(median(f"trickle {c}", lambda s: s.redis_cpu_us)),
        ),
        (
            "worker CPU us/job, trickle",
            lambda c: cell(median(f"trickle {c}", lambda s: s.worker_cpu_us)),
        ),
        ("enqueue-to-start p50 ms", lambda c: cell(_latency(results, c, 50), 2)),
        ("enqueue-to-start p99 ms", lambda c: cell(_latency(results, c, 99), 2)),
        (f"{args.io_ms:g} ms I/O jobs/s (best)", lambda c: cell(best_rate(f"io {c}"))),
    ]
    print(
        f"\nworker: concurrency {args.concurrency} per worker process, {args.rounds} rounds, "
        f"pre-filled {args.jobs:,} jobs, trickle {args.trickle_jobs:,} jobs {args.gap_ms:g} ms "
        f"apart; Redis figures are medians net of the background on the shared server"
    )
    print(f"  {'':34}" + "".join(f"{title:>13}" for title, _ in columns))
    for title, get in rows:
        print(f"  {title:34}" + "".join(f"{get(key):>13}" for _, key in columns))
    bg = [s.background for samples in results.values() for s in samples]
    print(
        f"  background during the idle samples (median): "
        f"{statistics.median(b.commands / b.seconds for b in bg):,.0f} commands/s, "
        f"{statistics.median(b.cpu_s / b.seconds for b in bg) * 100:.1f} % of a core"
    )
    return _checks(results, n, best_rate, median)


def _latency(results: dict[str, list[Sample]], column: str, p: float) -> float | None:
    pooled = [x for s in results.get(f"trickle {column}", []) for x in s.latencies_ms]
    return _pct(pooled, p) if pooled else None


def _checks(
    results: dict[str, list[Sample]],
    n: int,
    best_rate: Callable[[str], float | None],
    median: Callable[[str, Callable[[Sample], float]], float | None],
) -> list[Check]:
    checks: list[Check] = []
    one, bull = best_rate("prefilled jobdeck-1"), best_rate("prefilled bullmq")
    if one is not None:
        checks.append(Check("no-op jobs/s, one worker process", one, 5000, True))
    if one is not None and bull is not None:
        checks.append(Check("jobdeck / BullMQ no-op jobs/s", one / bull, 0.33, True))
    cpu = median("prefilled jobdeck-1", lambda s: s.worker_cpu_us)
    if cpu is not None:
        checks.append(Check("worker CPU per job, pre-filled", cpu, 150, False, " us"))
    redis_one = median("prefilled jobdeck-1", lambda s: s.redis_cpu_us)
    redis_bull = median("prefilled bullmq", lambda s: s.redis_cpu_us)
    if redis_one is not None and redis_bull is not None:
        checks.append(
            Check("Redis CPU per job pre-filled, jobdeck vs BullMQ's", redis_one, redis_bull, False)
        )
    t1 = median("trickle jobdeck-1", lambda s: s.redis_cpu_us)
    tn = median(f"trickle jobdeck-{n}", lambda s: s.redis_cpu_us)
    if t1 is not None and tn is not None and t1 > 0:
        checks.append(
            Check(f"trickle Redis CPU per job, {n} workers / 1 worker", tn / t1, 1.2, False)
        )
    io1, ion = best_rate("io jobdeck-1"), best_rate(f"io jobdeck-{n}")
    if io1 is not None and ion is not None:
        checks.append(Check(f"scale-out, {n} worker processes / 1", ion / io1, 3.6, True, "x"))
    p50, p99 = _latency(results, "jobdeck-1", 50), _latency(results, "jobdeck-1", 99)
    if p50 is not None and p99 is not None:
        checks.append(Check("enqueue-to-start p50, one idle worker", p50, 2, False, " ms"))
        checks.append(Check("enqueue-to-start p99, one idle worker", p99, 10, False, " ms"))
    return checks


def env_default(name: str, default: Any) -> Any:
    raw = os.environ.get(f"BENCH_WORKER_{name.upper()}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw not in ("", "0", "false", "no")
    return type(default)(raw)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    flags: dict[str, tuple[Any, str]] = {
        "rounds": (3, "repeats of every measurement (interleaved)"),
        "jobs": (20_000, "no-op jobs per pre-filled window"),
        "concurrency": (50, "concurrency of every worker process"),
        "fleet": (4, "worker processes of the larger jobdeck fleet"),
        "trickle_jobs": (1000, "jobs per trickle window"),
        "gap_ms": (5.0, "trickle: ms between two enqueues"),
        "io_ms": (50.0, "scale-out: how long each I/O-bound job waits"),
        "scale_seconds": (3.0, "scale-out: seconds of work at each fleet's ideal rate"),
        "warm_up": (200, "jobs run by each fleet before its window"),
        "background_s": (1.0, "idle sample of the shared Redis before each window"),
    }
    for name, (default, text) in flags.items():
        value = env_default(name, default)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=value,
                            help=f"{text} (default {value})")  # fmt: skip
    parser.add_argument(
        "--quick",
        action="store_true",
        default=env_default("quick", False),
        help="a ~1-2 minute run (on a quiet machine): 2 rounds, 3,000 jobs, 300-job trickle, "
        "1.5 s scale-out, 100-job warm-ups, 0.5 s background samples",
    )
    parser.add_argument("--only", default=env_default("only", ",".join(PARTS)))
    parser.add_argument("--redis-base", default=env_default("redis_base", "redis://127.0.0.1:6379"))
    parser.add_argument("--json", default=env_default("json", ""), help="write every sample here")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.jobs, args.trickle_jobs, args.scale_seconds = 2, 3000, 300, 1.5
        args.warm_up, args.background_s = 100, 0.5
    args.only = {p.strip() for p in args.only.split(",") if p.strip()}
    if unknown := args.only - set(PARTS):
        parser.error(f"--only: unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    return args


async def main(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]
    async with leased_db(args.redis_base) as url:
        results = await run(args, url)
    checks = report(results, args)
    load_after = os.getloadavg()[0]
    print(f"  load average (1 min): {load_before:.1f} at the start, {load_after:.1f} at the end")
    print("targets (issue 7), ratios from this run:")
    for check in checks:
        print(check.line())
    passed = sum(c.passed for c in checks)
    print(
        f"worker: {passed} of {len(checks)} targets met; "
        + "; ".join(f"{c.what} {_num(c.measured)}{c.unit}" for c in checks)
    )
    if args.json:
        payload = {
            key: [{**asdict(s), "redis_net": asdict(s.redis)} for s in samples]
            for key, samples in results.items()
        }
        with open(args.json, "w") as out:  # noqa: ASYNC230 - after every measurement
            json.dump({"args": {**vars(args), "only": sorted(args.only)}, "samples": payload}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
