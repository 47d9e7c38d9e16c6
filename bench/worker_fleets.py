"""The worker fleets ``bench/worker.py`` measures, each behind the same small interface.

A fleet is started idle, warmed up, then either paused and pre-filled (``pause``, ``fill``,
``resume``: the clock runs from ``resume`` until every job completed) or fed one job at a time
(``trickle``). ``pids`` are the worker processes whose CPU time is counted.

- ``JobdeckFleet``: ``python -m jobdeck_worker`` processes on one queue, jobs enqueued through
  ``jobdeck.queues.QueueClient``. Completion is read from the length of the event stream (one
  O(1) ``XLEN`` per poll, so watching adds next to nothing to the Redis figures): how many stream
  entries one job adds when enqueued and when run is measured once, on the first warm-up.
- ``BullmqFleet``: one node process running a BullMQ ``Worker`` (``bench/node``), on its own key
  prefix; it reports completions itself, so watching costs Redis nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from asyncio.subprocess import PIPE, Process
from pathlib import Path
from typing import Any

from arq.constants import job_key_prefix
from arq.jobs import serialize_job
from arq_worker import READY_KEY
from jobdeck.events import EventType, decode
from jobdeck.queues import WORKERS, JobSpec, QueueClient
from jobdeck.streams import EVENTS
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "node"
LOG_DIR = Path("/tmp")
STREAM_MAXLEN = 100_000_000  # never trim inside a run: completion is counted by stream length
POLL_S = 0.005


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_quiet(pids: list[int], within: float = 5.0) -> None:
    """Until the processes are idle (< 5 % of a core over 0.2 s): a fair start for the clock."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(0.2)
        if sum(cpu_seconds(p) for p in pids) - before < 0.01:
            return


async def stop_process(proc: Process, within: float = 20) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class JobdeckFleet:
    label = "jobdeck"

    # Stream entries per job, measured on the first warm-up of the run (class-wide).
    added_per_job: int | None = None
    run_per_job: int | None = None

    def __init__(self, redis: Redis, url: str, queue: str, workers: int, concurrency: int) -> None:
        self.redis = redis
        self.url = url
        self.queue = queue
        self.workers = workers
        self.concurrency = concurrency
        self.client = QueueClient(redis, STREAM_MAXLEN)
        self.procs: list[Process] = []
        self.polls = 0  # XLEN calls made to watch the stream (subtracted from Redis figures)
        self._target = 0
        self._control_entries = 0  # stream entries of a pause (and so of a resume)
        self.enqueued = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]),
            "JOBDECK_REDIS_URL": self.url,
            "JOBDECK_WORKER_PORT": "0",
            "JOBDECK_LOG_LEVEL": "WARNING",
            "JOBDECK_STREAM_MAXLEN": str(STREAM_MAXLEN),
        }
        already = int(await self.redis.zcard(WORKERS))
        for i in range(self.workers):
            log = open(LOG_DIR / f"jobdeck-bench-worker-{i}.log", "ab")  # noqa: SIM115, ASYNC230
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "jobdeck_worker",
                "--queue", f"{self.queue}:{self.concurrency}",
                "--tasks", "worker_tasks", "--grace", "0",
                env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
            self.procs.append(proc)
            log.close()
        deadline = time.monotonic() + 60
        while int(await self.redis.zcard(WORKERS)) < already + self.workers:
            if time.monotonic() > deadline or any(p.returncode is not None for p in self.procs):
                raise RuntimeError(f"jobdeck workers did not start; see {LOG_DIR}/jobdeck-bench-*")
            await asyncio.sleep(0.05)

    async def warm_up(self, jobs: int) -> None:
        """Run ``jobs`` no-op jobs; the first time, learn how many stream entries a job adds.

        Stream lengths are computed, not read, once workers may be running the jobs: a length
        read just after enqueueing can already hold some of their run events.
        """
        if JobdeckFleet.run_per_job is None:
            await self.pause()  # so that the enqueue's own entries can be counted alone
            before = await self._xlen()
            await self._enqueue([self._spec("noop") for _ in range(jobs)])
            after_enqueue = await self._xlen()
            JobdeckFleet.added_per_job = _per_job(after_enqueue - before, jobs, "enqueue")
            await self.client.resume(self.queue)
            await self._wait_completed(jobs, after_enqueue)
            run = await self._xlen() - after_enqueue - self._control_entries
            JobdeckFleet.run_per_job = _per_job(run, jobs, "run")
        else:
            before = await self._xlen()
            await self.expect(jobs, before + jobs * JobdeckFleet.added_per_job)
            await self._enqueue([self._spec("noop") for _ in range(jobs)])
            await self.wait_done()

    async def pause(self) -> None:
        before = await self._xlen()
        await self.client.pause(self.queue)
        self._control_entries = await self._xlen() - before

    async def fill(self, jobs: int, task: str, data: Any = None) -> None:
        before = await self._xlen()
        await self._enqueue([self._spec(task, data) for _ in range(jobs)])
        await wait_quiet(self.pids)
        assert JobdeckFleet.added_per_job is not None, "warm_up() first"
        if await self._xlen() != before + jobs * JobdeckFleet.added_per_job:
            raise RuntimeError("jobs ran while the queue was paused: the bench would lie")

    async def resume(self) -> None:
        self._target += self._control_entries  # the resume's own event
        await self.client.resume(self.queue)

    async def expect(self, jobs: int, base: int | None = None) -> None:
        """Watch for ``jobs`` more completions, counted from now (or stream length ``base``)."""
        assert JobdeckFleet.run_per_job is not None, "warm_up() first"
        if base is None:
            base = await self._xlen()
        self._target = base + jobs * JobdeckFleet.run_per_job

    async def wait_done(self, within: float = 300) -> None:
        deadline = time.monotonic() + within
        seen = 0
        while (length := await self._xlen()) < self._target:
            if length < seen:
                raise RuntimeError("the event stream shrank: something else uses this database")
            seen = length
            if time.monotonic() > deadline:
                raise TimeoutError("jobs did not complete")
            if any(p.returncode is not None for p in self.procs):
                raise RuntimeError("a jobdeck worker exited")
            await asyncio.sleep(POLL_S)

    async def prepare_trickle(self, jobs: int, gap_ms: float) -> None:
        return None  # this process is the producer

    async def trickle(self, jobs: int, gap_ms: float) -> None:
        """Enqueue ``jobs`` stamp jobs ``gap_ms`` apart, one call each, as a producer would."""
        assert JobdeckFleet.added_per_job is not None, "warm_up() first"
        self._target += jobs * JobdeckFleet.added_per_job
        start = time.monotonic()
        for i in range(jobs):
            await asyncio.sleep(max(start + i * gap_ms / 1000 - time.monotonic(), 0))
            await self.client.enqueue(self._spec("stamp", {"t": time.time()}))
        self.enqueued += jobs

    async def verify(self) -> None:
        """Every job enqueued completed, once: the stream-length count did not mislead us."""
        counts: dict[EventType, int] = {}
        for _, fields in await self.redis.xrange(EVENTS):
            event = decode(fields[b"e"])
            if event.queue == self.queue:
                counts[event.type] = counts.get(event.type, 0) + 1
        ran = (counts.get(EventType.STARTED), counts.get(EventType.COMPLETED))
        if ran != (self.enqueued, self.enqueued) or EventType.FAILED in counts:
            raise RuntimeError(f"{self.enqueued} jobs enqueued, stream holds {counts}")

    async def latencies_ms(self) -> list[float]:
        """Enqueue-to-start of every stamp job run so far (read after the Redis figures)."""
        latencies = []
        for _, fields in await self.redis.xrange(EVENTS):
            event = decode(fields[b"e"])
            if event.type is EventType.COMPLETED and event.name == "stamp":
                latencies.append(float(event.fields["result"]) * 1000)
        return latencies

    async def stop(self) -> None:
        await asyncio.gather(*(stop_process(p) for p in self.procs))

    def _spec(self, task: str, data: Any = None) -> JobSpec:
        return JobSpec(queue=self.queue, name=task, data=data, max_attempts=1)

    async def _enqueue(self, specs: list[JobSpec]) -> None:
        self.enqueued += len(specs)
        for start in range(0, len(specs), 2000):
            assert all(await self.client.enqueue_many(specs[start : start + 2000]))

    async def _xlen(self) -> int:
        self.polls += 1
        return int(await self.redis.xlen(EVENTS))

    async def _wait_completed(self, jobs: int, after: int, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while True:
            entries = await self.redis.xrange(EVENTS)
            done = sum(decode(f[b"e"]).type is EventType.COMPLETED for _, f in entries[after:])
            if done >= jobs:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"warm-up: {done} of {jobs} jobs completed")
            await asyncio.sleep(0.05)


def _per_job(entries: int, jobs: int, what: str) -> int:
    if entries % jobs:
        raise RuntimeError(f"{what}: {entries} stream entries for {jobs} jobs is not a multiple")
    return entries // jobs


class OneProcessFleet:
    """A baseline fleet: one worker process on one queue."""

    workers = 1

    def __init__(self, url: str, queue: str, concurrency: int) -> None:
        self.url = url
        self.queue = queue
        self.concurrency = concurrency
        self.proc: Process | None = None
        self.polls = 0

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid]


class BullmqFleet(OneProcessFleet):
    """One BullMQ worker process (the issue's baseline: one process, same concurrency)."""

    label = "BullMQ"

    def __init__(self, url: str, queue: str, concurrency: int) -> None:
        if not (NODE_DIR / "node_modules" / "bullmq").is_dir():
            raise RuntimeError("bench/node has no node_modules: run `make bench` (npm ci)")
        super().__init__(url, queue, concurrency)
        self.prefix = "benchbull"
        self.producer: Process | None = None

    async def start(self) -> None:
        log = open(LOG_DIR / "jobdeck-bench-bullmq.log", "ab")  # noqa: SIM115, ASYNC230
        self.proc = await asyncio.create_subprocess_exec(
            "node", "bullmq-worker.mjs", self.url, self.prefix, self.queue,
            str(self.concurrency), cwd=NODE_DIR, stdin=PIPE, stdout=PIPE, stderr=log,
        )  # fmt: skip
        log.close()
        await self._reply("ready", 60)

    async def warm_up(self, jobs: int) -> None:
        await self._send("expect", jobs)
        await self._send("run")
        await self._produce("bulk", jobs, "noop")
        await self.wait_done()

    async def pause(self) -> None:
        await self._send("pause")
        await self._reply("paused")

    async def fill(self, jobs: int, task: str, data: Any = None) -> None:
        await self._produce("bulk", jobs, task, data)
        await wait_quiet(self.pids)

    async def resume(self) -> None:
        await self._send("run")

    async def expect(self, jobs: int) -> None:
        await self._send("expect", jobs)

    async def wait_done(self, within: float = 300) -> None:
        await self._reply("done", within)

    async def prepare_trickle(self, jobs: int, gap_ms: float) -> None:
        """Start the producer (node, connected, waiting) before the window opens."""
        self.producer = await self._spawn_producer("trickle", jobs, "stamp", gap_ms)
        assert self.producer.stdout is not None
        line = await asyncio.wait_for(self.producer.stdout.readline(), 60)
        if b'"ready"' not in line:
            raise RuntimeError(f"BullMQ producer did not start: {line!r}")

    async def trickle(self, jobs: int, gap_ms: float) -> None:
        assert self.producer is not None and self.producer.stdin is not None
        self.producer.stdin.write(b"go\n")
        await self.producer.stdin.drain()
        await self._finish_producer(self.producer)
        self.producer = None

    async def latencies_ms(self) -> list[float]:
        await self._send("report")
        report: dict[str, Any] = await self._reply("report")
        return [float(x) for x in report["latencies_ms"]]

    async def stop(self) -> None:
        if self.producer is not None:
            await stop_process(self.producer)
        if self.proc is not None and self.proc.returncode is None:
            await self._send("close")
            await stop_process(self.proc)

    async def _produce(self, mode: str, jobs: int, task: str, data: Any = None) -> None:
        await self._finish_producer(await self._spawn_producer(mode, jobs, task, 0, data))

    async def _spawn_producer(
        self, mode: str, jobs: int, task: str, gap_ms: float, data: Any = None
    ) -> Process:
        return await asyncio.create_subprocess_exec(
            "node", "bullmq-produce.mjs", self.url, self.prefix, self.queue, mode, str(jobs),
            task, str(gap_ms), json.dumps(data or {}),
            cwd=NODE_DIR, stdin=PIPE, stdout=PIPE,
        )  # fmt: skip

    @staticmethod
    async def _finish_producer(producer: Process) -> None:
        out, _ = await producer.communicate()
        if producer.returncode != 0 or b'"added"' not in out:
            raise RuntimeError(f"BullMQ producer failed: {out!r}")

    async def _send(self, *words: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((" ".join(map(str, words)) + "\n").encode())
        await self.proc.stdin.drain()

    async def _reply(self, key: str, within: float = 300) -> Any:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), within)
            if not line:
                raise RuntimeError(f"BullMQ worker exited; see {LOG_DIR}/jobdeck-bench-bullmq.log")
            message = json.loads(line)
            if key in message:
                return message[key]


class ArqFleet(OneProcessFleet):
    """One bare arq worker (``bench/arq_worker.py``) on arq's own queue layout.

    arq has no pause: jobs are written to a staging key while it idles, then renamed onto its
    queue in one step. arq removes a job from the queue when it finishes, so "done" is an
    empty queue.
    """

    label = "bare arq"

    def __init__(self, redis: Redis, url: str, queue: str, concurrency: int) -> None:
        super().__init__(url, queue, concurrency)
        self.redis = redis
        self.staging = queue + ":staging"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench" / "arq_worker.py"), self.url, self.queue,
            str(self.concurrency), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not await self.redis.exists(READY_KEY + self.queue):
            if time.monotonic() > deadline or self.proc.returncode is not None:
                raise RuntimeError("the arq worker did not start")
            await asyncio.sleep(0.05)

    async def warm_up(self, jobs: int) -> None:
        await self.fill(jobs, "noop")
        await self.resume()
        await self.wait_done()

    async def pause(self) -> None:
        return None

    async def fill(self, jobs: int, task: str, data: Any = None) -> None:
        now = int(time.time() * 1000)
        for start in range(0, jobs, 2000):
            async with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(start, min(start + 2000, jobs)):
                    job_id = os.urandom(16).hex()
                    job = serialize_job(task, (), {}, None, now)
                    pipe.psetex(job_key_prefix + job_id, 86_400_000, job)
                    pipe.zadd(self.staging, {job_id: now})
                await pipe.execute()

    async def resume(self) -> None:
        await self.redis.rename(self.staging, self.queue)

    async def expect(self, jobs: int) -> None:
        return None

    async def wait_done(self, within: float = 300) -> None:
        deadline = time.monotonic() + within
        while True:
            self.polls += 1
            if not await self.redis.zcard(self.queue):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("arq jobs did not complete")
            await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_process(self.proc)
