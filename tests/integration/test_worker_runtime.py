"""The worker runtime in-process against real Redis, observed through the event stream."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonschema
import msgpack
import pytest
from jobdeck.events import Event, EventType, decode, now_ms
from jobdeck.queues import (
    WORKERS,
    WORKERS_INFO,
    CancelOutcome,
    JobSpec,
    QueueClient,
    active_key,
    delayed_key,
    job_key,
    queue_key,
)
from jobdeck.settings import Settings
from jobdeck.streams import EVENTS
from jobdeck_worker.context import JobContext
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.registry import TaskRegistry
from jobdeck_worker.runtime import QueueSpec, WorkerRuntime
from redis.asyncio import Redis

from tests.support.processes import wait_for

SCHEMA = json.loads((Path(__file__).parents[2] / "proto" / "events.schema.json").read_text())
tasks = TaskRegistry()


@tasks.task("noop")
async def noop(job: JobContext) -> None:
    return None


@tasks.task("echo")
async def echo(job: JobContext) -> Any:
    return job.data


@tasks.task("chatty")
async def chatty(job: JobContext) -> str:
    for i in range(1, 4):
        job.log("info", f"step {i}")
        await job.progress(i * 33.3, f"step {i}")
        await asyncio.sleep(0)
    job.log("debug", "done")
    return "ok"


@tasks.task("flaky")
async def flaky(job: JobContext) -> int:
    if job.attempt < job.data["succeed_on"]:
        raise ConnectionError(f"refused on attempt {job.attempt}")
    return job.attempt


@tasks.task("fail")
async def fail(job: JobContext) -> None:
    raise ValueError(f"bad input {job.data!r}")


@tasks.task("nap")
async def nap(job: JobContext) -> None:
    await asyncio.sleep(float(job.data))


@tasks.task("hang")
async def hang(job: JobContext) -> None:
    job.log("info", "hanging")
    await asyncio.sleep(3600)


StartRuntime = Callable[..., Awaitable[WorkerRuntime]]
_instances = itertools.count()


@pytest.fixture
async def start_runtime(redis_url: str) -> AsyncIterator[StartRuntime]:
    runtimes: list[WorkerRuntime] = []

    async def start(*queues: str, **options: Any) -> WorkerRuntime:
        settings = Settings(redis_url=redis_url, instance=f"test-worker-{next(_instances)}")
        opts = WorkerOptions(**{"grace_s": 0.0, "fallback_poll_s": 0.5, "lease_s": 5, **options})
        runtime = WorkerRuntime(settings, tasks, [QueueSpec.parse(q) for q in queues], opts)
        await runtime.start()
        runtimes.append(runtime)
        return runtime

    yield start
    for runtime in runtimes:
        if runtime._redis is not None:
            await runtime.stop(grace_s=0)


@pytest.fixture
def client(redis: Redis) -> QueueClient:
    return QueueClient(redis, 100_000)


async def stream(redis: Redis, job_id: str | None = None) -> list[Event]:
    events = [decode(fields[b"e"]) for _, fields in await redis.xrange(EVENTS)]
    return [e for e in events if job_id is None or e.job_id == job_id]


async def wait_event(
    redis: Redis, job_id: str, etype: EventType, attempt: int | None = None, within: float = 15
) -> Event:
    found: list[Event] = []

    async def seen() -> bool:
        found[:] = [
            e
            for e in await stream(redis, job_id)
            if e.type is etype and (attempt is None or e.attempt == attempt)
        ]
        return bool(found)

    await wait_for(seen, within, what=f"{etype} of {job_id}")
    return found[0]


def types(events: list[Event]) -> list[str]:
    return [str(e.type) for e in events]


async def test_a_job_runs_and_completes_with_its_result(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q:2")
    spec = JobSpec(queue="q", name="echo", data={"hello": ["world", 1]})
    assert await client.enqueue(spec)
    done = await wait_event(redis, spec.job_id, EventType.COMPLETED)
    assert done.fields["result"] == {"hello": ["world", 1]}
    assert done.fields["duration_ms"] >= 0 and done.attempt == 1 and done.name == "echo"
    events = await stream(redis, spec.job_id)
    assert types(events) == ["added", "started", "completed"]
    assert events[1].fields["worker"].startswith("test-worker-")
    assert events[1].fields["started_at"] == done.fields["started_at"]
    # nothing left queued or running; the job's hash says done (and expires)
    assert await redis.zcard(queue_key("q")) == 0
    assert await redis.zcard(active_key("q")) == 0
    assert await redis.hget(job_key(spec.job_id), "state") == b"done"


async def test_progress_and_logs_arrive_in_order_before_the_final_event(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q")
    spec = JobSpec(queue="q", name="chatty")
    await client.enqueue(spec)
    await wait_event(redis, spec.job_id, EventType.COMPLETED)
    events = await stream(redis, spec.job_id)
    assert types(events)[0:2] == ["added", "started"] and types(events)[-1] == "completed"
    logs = [e.fields for e in events if e.type is EventType.LOG]
    assert [(f["seq"], f["level"], f["message"]) for f in logs] == [
        (1, "info", "step 1"),
        (2, "info", "step 2"),
        (3, "info", "step 3"),
        (4, "debug", "done"),
    ]
    progress = [e.fields["progress"] for e in events if e.type is EventType.PROGRESS]
    assert progress and progress == sorted(progress)


async def test_a_failing_job_is_retried_with_backoff_then_succeeds(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q")
    spec = JobSpec(queue="q", name="flaky", data={"succeed_on": 3}, backoff_ms=20, max_attempts=5)
    await client.enqueue(spec)
    done = await wait_event(redis, spec.job_id, EventType.COMPLETED)
    assert done.attempt == 3 and done.fields["result"] == 3
    events = await stream(redis, spec.job_id)
    assert types(events) == [
        "added",
        "started",
        "retrying",
        "started",
        "retrying",
        "started",
        "completed",
    ]
    retries = [e for e in events if e.type is EventType.RETRYING]
    assert [e.attempt for e in retries] == [1, 2]
    assert retries[0].fields["error_type"] == "ConnectionError"
    assert "refused on attempt 1" in retries[0].fields["error_message"]
    assert retries[0].fields["retry_at"] >= retries[0].fields["finished_at"]
    # the second retry waited longer than the first (exponential backoff, jitter <= 10 %)
    waits = [e.fields["retry_at"] - e.fields["finished_at"] for e in retries]
    assert waits[1] > waits[0] > 0


async def test_the_last_failure_is_final_with_a_traceback(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q")
    spec = JobSpec(queue="q", name="fail", data=7, backoff_ms=1, max_attempts=2)
    await client.enqueue(spec)
    failed = await wait_event(redis, spec.job_id, EventType.FAILED)
    assert failed.attempt == 2
    assert failed.fields["error_type"] == "ValueError"
    assert failed.fields["error_message"] == "bad input 7"
    assert "Traceback" in failed.fields["traceback"] and "in fail" in failed.fields["traceback"]
    assert types(await stream(redis, spec.job_id)) == [
        "added",
        "started",
        "retrying",
        "started",
        "failed",
    ]


async def test_an_unknown_task_fails_at_once(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q")
    spec = JobSpec(queue="q", name="no-such-task", max_attempts=5)
    await client.enqueue(spec)
    failed = await wait_event(redis, spec.job_id, EventType.FAILED)
    assert failed.fields["error_message"] == "no task named 'no-such-task' on queue 'q'"
    assert failed.fields["error_type"] == "UnknownTask"
    assert types(await stream(redis, spec.job_id)) == ["added", "failed"]


async def test_a_timeout_is_an_ordinary_retryable_failure(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q")
    spec = JobSpec(queue="q", name="hang", timeout_s=0.05, max_attempts=2, backoff_ms=1)
    await client.enqueue(spec)
    failed = await wait_event(redis, spec.job_id, EventType.FAILED)
    assert failed.attempt == 2
    assert failed.fields["error_type"] == "JobTimeout"
    assert failed.fields["error_message"] == "job timed out after 0.05s"
    retrying = await wait_event(redis, spec.job_id, EventType.RETRYING)
    assert retrying.fields["error_type"] == "JobTimeout"


async def test_aborting_a_running_job_cancels_it(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q")
    spec = JobSpec(queue="q", name="hang", max_attempts=3)
    await client.enqueue(spec)
    started = await wait_event(redis, spec.job_id, EventType.STARTED)  # flushed while running
    await wait_event(redis, spec.job_id, EventType.LOG)
    outcome = await client.cancel(spec.job_id, "q", "hang", started.attempt, by="alice")
    assert outcome is CancelOutcome.ABORTING
    cancelled = await wait_event(redis, spec.job_id, EventType.CANCELLED)
    assert cancelled.fields["started_at"] == started.fields["started_at"]
    assert cancelled.fields["by"] == "alice"  # carried from the request to the worker's event
    assert types(await stream(redis, spec.job_id)) == ["added", "started", "log", "cancelled"]
    assert await redis.hget(job_key(spec.job_id), "state") == b"done"
    assert not await redis.hexists(job_key(spec.job_id), "abort")  # answered: request gone
    assert await redis.zcard(active_key("q")) == 0


async def test_pause_holds_new_jobs_and_resume_releases_them(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await client.pause("held", by="ops")
    runtime = await start_runtime("held", "free")
    assert runtime.workers["held"].paused
    waiting = JobSpec(queue="held", name="noop")
    doomed = JobSpec(queue="held", name="noop")
    await client.enqueue(waiting)
    await client.enqueue(doomed)
    # The same process serves an unpaused queue: once its job (enqueued later) is done,
    # the worker has seen both wake-ups and still left the paused queue alone.
    probe = JobSpec(queue="free", name="noop")
    await client.enqueue(probe)
    await wait_event(redis, probe.job_id, EventType.COMPLETED)
    assert types(await stream(redis, waiting.job_id)) == ["added"]
    assert await client.cancel(doomed.job_id, "held", "noop", 1) is CancelOutcome.CANCELLED

    await client.resume("held", by="ops")
    await wait_event(redis, waiting.job_id, EventType.COMPLETED)
    assert not runtime.workers["held"].paused
    assert types(await stream(redis, doomed.job_id)) == ["added", "cancelled"]


async def test_priority_orders_dispatch_within_a_queue(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await client.pause("prio")
    await start_runtime("prio:1")
    priorities = [0, 5, 1, 9, 0, 5, 3, 9, 1, 0]
    specs = [
        JobSpec(queue="prio", name="echo", data=i, priority=p) for i, p in enumerate(priorities)
    ]
    for spec in specs:
        await client.enqueue(spec)
    await client.resume("prio")

    async def all_done() -> bool:
        done = [e for e in await stream(redis) if e.type is EventType.COMPLETED]
        return len([e for e in done if e.queue == "prio"]) == len(specs)

    await wait_for(all_done, 20, what="all jobs done")
    priority = {s.job_id: s.priority for s in specs}
    started = [e.job_id for e in await stream(redis) if e.type is EventType.STARTED]
    order = [priority[job_id] for job_id in started if job_id in priority]
    # (ties go FIFO only at millisecond resolution of the score, so compare priorities)
    assert order == sorted(priorities, reverse=True)


async def test_a_new_high_priority_job_overtakes_a_long_backlog(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("busy:1")
    backlog = [JobSpec(queue="busy", name="nap", data=0.01) for _ in range(100)]
    await client.enqueue_many(backlog)
    await wait_event(redis, backlog[0].job_id, EventType.STARTED)
    started_before = sum(
        e.type is EventType.STARTED and e.queue == "busy" for e in await stream(redis)
    )
    urgent = JobSpec(queue="busy", name="noop", priority=50)
    await client.enqueue(urgent)
    await wait_event(redis, urgent.job_id, EventType.COMPLETED)
    started = [
        e.job_id for e in await stream(redis) if e.type is EventType.STARTED and e.queue == "busy"
    ]
    # at most the running job and one being claimed go first, not the rest of the backlog
    assert started.index(urgent.job_id) <= started_before + 2


async def started_order(redis: Redis, queue: str) -> list[str | None]:
    return [
        e.job_id for e in await stream(redis) if e.type is EventType.STARTED and e.queue == queue
    ]


async def test_a_delayed_job_competes_with_its_priority_once_due(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    """The reviewer's case: a due high-priority delayed job goes before ready lower ones."""
    await client.pause("p")
    await start_runtime("p:1")
    delayed = JobSpec(
        queue="p", name="noop", priority=100, run_at_ms=now_ms() + 500, job_id="p-high-delayed"
    )
    specs = [
        JobSpec(queue="p", name="noop", job_id="p-low-1"),
        JobSpec(queue="p", name="noop", job_id="p-low-2"),
        delayed,
        JobSpec(queue="p", name="noop", priority=10, job_id="p-mid"),
    ]
    for spec in specs:
        assert await client.enqueue(spec)
    # the delayed job waits in the delayed set, scored by its due time
    assert await redis.zscore(delayed_key("p"), "p-high-delayed") == delayed.run_at_ms
    assert delayed.run_at_ms is not None
    due_at = delayed.run_at_ms

    async def due() -> bool:
        return now_ms() > due_at

    await wait_for(due, 10, what="the delayed job is due")
    await client.resume("p")
    await wait_for(lambda: _all_completed(redis, [s.job_id for s in specs]), 10, what="all done")
    assert await started_order(redis, "p") == ["p-high-delayed", "p-mid", "p-low-1", "p-low-2"]


async def _all_completed(redis: Redis, job_ids: list[str]) -> bool:
    done = {e.job_id for e in await stream(redis) if e.type is EventType.COMPLETED}
    return all(j in done for j in job_ids)


async def test_a_retry_keeps_its_priority_once_its_backoff_is_over(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    runtime = await start_runtime("r:1")
    flaky_job = JobSpec(
        queue="r", name="flaky", data={"succeed_on": 2}, priority=50, backoff_ms=800
    )
    assert await client.enqueue(flaky_job)
    retrying = await wait_event(redis, flaky_job.job_id, EventType.RETRYING)
    await client.pause("r")
    await wait_for(lambda: _is_paused(runtime, "r"), 10, what="the worker saw the pause")
    # the retry waits in the delayed set until due, then competes with its priority
    assert await redis.zscore(delayed_key("r"), flaky_job.job_id) == retrying.fields["retry_at"]
    others = [
        JobSpec(queue="r", name="noop", job_id="r-low"),
        JobSpec(queue="r", name="noop", priority=10, job_id="r-mid"),
    ]
    for spec in others:
        assert await client.enqueue(spec)
    retry_at = retrying.fields["retry_at"]

    async def due() -> bool:
        return now_ms() > retry_at

    await wait_for(due, 10, what="the retry is due")
    await client.resume("r")
    ids = [flaky_job.job_id, *(s.job_id for s in others)]
    await wait_for(lambda: _all_completed(redis, ids), 10, what="all done")
    assert await started_order(redis, "r") == [flaky_job.job_id, flaky_job.job_id, "r-mid", "r-low"]


async def _is_paused(runtime: WorkerRuntime, queue: str) -> bool:
    return runtime.workers[queue].paused


async def test_freed_slots_are_refilled_without_waiting_for_a_poll(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    """One wake-up for a long backlog: the worker must keep going on its own, not poll."""
    await start_runtime("drain:10", fallback_poll_s=600)
    specs = [JobSpec(queue="drain", name="noop") for _ in range(300)]
    assert all(await client.enqueue_many(specs))

    async def all_done() -> bool:
        done = {e.job_id for e in await stream(redis) if e.type is EventType.COMPLETED}
        return all(s.job_id in done for s in specs)

    await wait_for(all_done, 30, what="the backlog drained")


async def test_every_event_type_matches_the_schema(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    await start_runtime("q:4")
    await client.pause("q", by="ops")
    await client.resume("q", by="ops")
    specs = [
        JobSpec(queue="q", name="chatty"),
        JobSpec(queue="q", name="flaky", data={"succeed_on": 2}, backoff_ms=1),
        JobSpec(queue="q", name="fail", max_attempts=1),
        JobSpec(queue="q", name="hang"),
        JobSpec(queue="q", name="nope"),
    ]
    for spec in specs:
        await client.enqueue(spec)
    await wait_event(redis, specs[3].job_id, EventType.STARTED)
    await client.cancel(specs[3].job_id, "q", "hang", 1)
    for spec, final in zip(
        specs,
        [EventType.COMPLETED, EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED],
        strict=False,
    ):
        await wait_event(redis, spec.job_id, final)
    await wait_event(redis, specs[4].job_id, EventType.FAILED)

    validator = jsonschema.Draft202012Validator(SCHEMA)
    seen = set()

    for _, fields in await redis.xrange(EVENTS):
        body = msgpack.unpackb(fields[b"e"], raw=False)
        if body.get("queue") != "q":
            continue  # not ours: another suite sharing this Redis database
        validator.validate(body)
        seen.add(body["type"])
    # alerts come from the gateway, export.* from the exporter, removals from the API
    not_workers = {
        str(t) for t in EventType if t in ("alert", "removed") or t.startswith("export.")
    }
    assert seen == {str(t) for t in EventType} - not_workers

    bad = {"v": 1, "type": "log", "ts": 1, "queue": "q", "job_id": "j", "attempt": 1, "name": "x"}
    assert not validator.is_valid(bad)  # missing seq, level, message


async def test_the_worker_registers_itself_while_alive(
    start_runtime: StartRuntime, redis: Redis
) -> None:
    runtime = await start_runtime("a:3", "b:2")
    assert await redis.zscore(WORKERS, runtime.instance) is not None
    info = json.loads(await redis.hget(WORKERS_INFO, runtime.instance))
    assert info["queues"] == ["a", "b"] and info["concurrency"] == 5 and info["active"] == 0
    assert info["per_queue"]["a"]["concurrency"] == 3
    await runtime.stop(grace_s=0)
    assert await redis.zscore(WORKERS, runtime.instance) is None
    assert await redis.hget(WORKERS_INFO, runtime.instance) is None


async def test_stopping_hands_a_running_job_back_without_using_an_attempt(
    start_runtime: StartRuntime, client: QueueClient, redis: Redis
) -> None:
    first = await start_runtime("q")
    spec = JobSpec(queue="q", name="hang", max_attempts=1, timeout_s=0.3)
    await client.enqueue(spec)
    await wait_event(redis, spec.job_id, EventType.STARTED)
    await first.stop(grace_s=0)
    back = await wait_event(redis, spec.job_id, EventType.RETRYING)
    assert back.fields["error_type"] == "WorkerShutdown"
    assert back.fields["retry_at"] == back.fields["finished_at"]
    assert await redis.zscore(queue_key("q"), spec.job_id) is not None  # still queued

    await start_runtime("q")
    started = await wait_event(redis, spec.job_id, EventType.STARTED, attempt=2)
    assert started.fields["max_attempts"] == 1  # the budget is not inflated...
    assert started.fields["handed_back"] == 1  # ...and the hand-back is not charged to it
    failed = await wait_event(redis, spec.job_id, EventType.FAILED)
    assert failed.fields["error_type"] == "JobTimeout"  # it really ran again
