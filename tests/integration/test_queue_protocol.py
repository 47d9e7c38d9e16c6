"""The queue protocol (``jobdeck.queues``) driven directly against a real Redis.

Workers are played by ``QueueConsumer`` objects with a controllable clock, so lease expiry
and due times are exercised without waiting.
"""

from __future__ import annotations

import msgpack
import pytest
from jobdeck.events import Event, EventType, decode, encode, now_ms
from jobdeck.queues import (
    CancelOutcome,
    Finish,
    JobSpec,
    Outcome,
    QueueClient,
    QueueConsumer,
    active_key,
    delayed_key,
    job_key,
    queue_key,
    wake_key,
)
from jobdeck.queues.layout import WAKE_BOUND
from jobdeck.streams import EVENTS
from redis.asyncio import Redis

LEASE_MS = 30_000


class Clock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(redis: Redis) -> QueueClient:
    return QueueClient(redis, 100_000)


def consumer(redis: Redis, clock: Clock, worker: str = "w1", queue: str = "q") -> QueueConsumer:
    return QueueConsumer(redis, queue, worker, 100_000, clock=clock)


async def events(redis: Redis, job_id: str) -> list[Event]:
    found = [decode(f[b"e"]) for _, f in await redis.xrange(EVENTS)]
    return [e for e in found if e.job_id == job_id]


def final(job_id: str, etype: EventType = EventType.COMPLETED, attempt: int = 1) -> bytes:
    fields = {"started_at": 1, "finished_at": 2, "duration_ms": 1, "error_type": "E"}
    fields |= {"error_message": "m", "retry_at": 3}
    return encode(
        Event(type=etype, queue="q", job_id=job_id, attempt=attempt, name="t", fields=fields)
    )


async def test_a_job_is_claimed_once_and_finished_once(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    spec = JobSpec(queue="q", name="t", data={"x": 1}, job_id="j1")
    assert await client.enqueue(spec)
    assert not await client.enqueue(spec)  # the id is queued
    w1, w2 = consumer(redis, clock, "w1"), consumer(redis, clock, "w2")
    batch = await w1.claim(10, LEASE_MS)
    assert [c.job_id for c in batch.jobs] == ["j1"] and batch.next_due_ms is None
    job = batch.jobs[0]
    assert job.runs == 1 and job.handed_back == 0 and job.token == "1@w1"
    assert msgpack.unpackb(job.spec) == spec.envelope()
    assert (await w2.claim(10, LEASE_MS)).jobs == []  # running jobs are not in the ready set
    assert await redis.zscore(active_key("q"), "j1") == clock.now + LEASE_MS

    done = Finish("j1", job.token, Outcome.DONE, [final("j1")])
    assert await w1.finish([done]) == [True]
    assert await w1.finish([done]) == [False]  # a replayed finish changes nothing
    assert [e.type for e in await events(redis, "j1")] == [EventType.ADDED, EventType.COMPLETED]
    assert await redis.hget(job_key("j1"), "state") == b"done"
    assert 0 < await redis.pttl(job_key("j1")) <= client.keep_ms
    assert not await client.enqueue(spec)  # a finished id stays taken while kept...
    assert await client.enqueue(spec, replace=True)  # ...unless re-enqueued on purpose
    assert (await w2.claim(10, LEASE_MS)).jobs[0].runs == 1


async def test_claims_never_read_past_running_jobs(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    """The reported starvation: 8 workers x 20 slots, 600 waiting, must run 160 at once."""
    assert all(await client.enqueue_many([JobSpec(queue="q", name="t") for _ in range(600)]))
    claimed = []
    for w in range(8):
        claimed += (await consumer(redis, clock, f"w{w}").claim(20, LEASE_MS)).jobs
    assert len(claimed) == 160 == len({c.job_id for c in claimed})
    assert await redis.zcard(active_key("q")) == 160
    assert await redis.zcard(queue_key("q")) == 440


async def test_priority_then_fifo_and_delayed_jobs_compete_once_due(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    now = clock.now
    specs = [
        JobSpec(queue="q", name="t", job_id="low-1"),
        JobSpec(queue="q", name="t", job_id="low-2"),
        JobSpec(queue="q", name="t", job_id="high-delayed", priority=90, run_at_ms=now + 5_000),
        JobSpec(queue="q", name="t", job_id="mid", priority=10),
    ]
    for spec in specs:
        assert await client.enqueue(spec)
    assert await redis.zscore(delayed_key("q"), "high-delayed") == now + 5_000
    w = consumer(redis, clock)
    batch = await w.claim(1, LEASE_MS)
    assert [c.job_id for c in batch.jobs] == ["mid"] and batch.next_due_ms == now + 5_000
    clock.now += 5_001
    rest = await w.claim(10, LEASE_MS)
    assert [c.job_id for c in rest.jobs] == ["high-delayed", "low-1", "low-2"]
    assert rest.next_due_ms is None


async def test_one_wake_token_per_runnable_job_bounded(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    await client.enqueue(JobSpec(queue="q", name="t"))
    assert await redis.llen(wake_key("q")) == 1
    w = consumer(redis, clock)
    assert await w.wait_for_work(0.01)  # one idle worker takes the token...
    assert not await w.wait_for_work(0.01)  # ...and no other is woken by the same job
    await client.enqueue_many([JobSpec(queue="q", name="t") for _ in range(WAKE_BOUND + 10)])
    assert await redis.llen(wake_key("q")) == WAKE_BOUND


async def test_an_expired_lease_is_a_new_attempt_and_the_old_owner_is_ignored(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    await client.enqueue(JobSpec(queue="q", name="t", job_id="j", max_attempts=3))
    w1, w2 = consumer(redis, clock, "w1"), consumer(redis, clock, "w2")
    first = (await w1.claim(1, LEASE_MS)).jobs[0]
    clock.now += LEASE_MS - 1
    assert (await w1.renew([("j", first.token)], LEASE_MS)).lost == []  # renewed in time
    clock.now += LEASE_MS + 1
    second = (await w2.claim(1, LEASE_MS)).jobs[0]  # requeued by the claim itself, then taken
    assert second.runs == 2 and second.token == "2@w2"
    lost = await events(redis, "j")
    assert [(e.type, e.attempt) for e in lost] == [
        (EventType.ADDED, 1),
        (EventType.RETRYING, 1),
    ]
    assert lost[1].fields["error_type"] == "LeaseExpired" and lost[1].fields["worker"] == "w1"
    assert lost[1].fields["retry_at"] == clock.now

    assert (await w1.renew([("j", first.token)], LEASE_MS)).lost == ["j"]
    late = Finish("j", first.token, Outcome.DONE, [final("j", attempt=1)])
    assert await w1.finish([late]) == [False]  # its late final event is never written
    assert await redis.hget(job_key("j"), "state") == b"active"
    assert len(await events(redis, "j")) == 2


async def test_an_expired_lease_past_the_budget_fails_the_job(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    await client.enqueue(JobSpec(queue="q", name="t", job_id="j", max_attempts=1))
    w = consumer(redis, clock)
    await w.claim(1, LEASE_MS)
    clock.now += LEASE_MS + 1
    assert (await w.claim(1, LEASE_MS)).jobs == []
    lost = (await events(redis, "j"))[-1]
    assert lost.type is EventType.FAILED and lost.fields["error_type"] == "LeaseExpired"
    assert await redis.hget(job_key("j"), "state") == b"done"


async def test_a_hand_back_keeps_its_place_and_is_not_charged(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    await client.enqueue(JobSpec(queue="q", name="t", job_id="first"))
    clock.now += 1
    await client.enqueue(JobSpec(queue="q", name="t", job_id="second"))
    w = consumer(redis, clock)
    job = (await w.claim(1, LEASE_MS)).jobs[0]
    assert await w.finish([Finish("first", job.token, Outcome.HANDBACK)]) == [True]
    again = (await w.claim(1, LEASE_MS)).jobs[0]
    assert again.job_id == "first" and again.runs == 2 and again.handed_back == 1


async def test_a_retry_waits_in_the_delayed_set_without_expiry(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    await client.enqueue(JobSpec(queue="q", name="t", job_id="j", priority=5))
    w = consumer(redis, clock)
    job = (await w.claim(1, LEASE_MS)).jobs[0]
    due = clock.now + 26 * 3_600_000
    retry = Finish("j", job.token, Outcome.RETRY, [final("j", EventType.RETRYING)], due)
    assert await w.finish([retry]) == [True]
    assert await redis.zscore(delayed_key("q"), "j") == due
    assert await redis.pttl(job_key("j")) == -1  # the attempt count cannot expire
    clock.now = due
    again = (await w.claim(1, LEASE_MS)).jobs[0]
    assert again.runs == 2


async def test_pause_stops_claims(redis: Redis, client: QueueClient, clock: Clock) -> None:
    await client.enqueue(JobSpec(queue="q", name="t"))
    await client.pause("q")
    w = consumer(redis, clock)
    assert (await w.claim(5, LEASE_MS)).jobs == []
    await client.resume("q")
    assert len((await w.claim(5, LEASE_MS)).jobs) == 1


async def test_cancel_a_queued_job_and_ask_a_running_one_to_stop(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    await client.enqueue(JobSpec(queue="q", name="t", job_id="queued", run_at_ms=clock.now + 10))
    await client.enqueue(JobSpec(queue="q", name="t", job_id="running"))
    w = consumer(redis, clock)
    job = (await w.claim(1, LEASE_MS)).jobs[0]
    assert await client.cancel("queued", "q", "t", 1, by="ann") is CancelOutcome.CANCELLED
    assert await redis.zcard(delayed_key("q")) == 0
    assert await client.cancel("running", "q", "t", 1, by="bob") is CancelOutcome.ABORTING
    assert (await w.renew([("running", job.token)], LEASE_MS)).abort == {"running": "bob"}
    assert await client.cancel("nope", "q", "t", 1) is CancelOutcome.GONE


async def test_a_running_job_lost_with_redis_is_restored_by_its_owner(
    redis: Redis, client: QueueClient, clock: Clock
) -> None:
    spec = JobSpec(queue="q", name="t", job_id="j", priority=3)
    await client.enqueue(spec)
    w = consumer(redis, clock)
    job = (await w.claim(1, LEASE_MS)).jobs[0]
    await redis.flushdb()  # a restart without persistence
    renewal = await w.renew([("j", job.token)], LEASE_MS)
    assert renewal.missing == ["j"]
    assert await w.restore(job, spec.envelope(), LEASE_MS)
    assert not await w.restore(job, spec.envelope(), LEASE_MS)
    assert (await w.renew([("j", job.token)], LEASE_MS)).missing == []
    assert await w.finish([Finish("j", job.token, Outcome.DONE, [final("j")])]) == [True]


async def test_counts_and_known_jobs(redis: Redis, client: QueueClient, clock: Clock) -> None:
    await client.enqueue(JobSpec(queue="q", name="t", job_id="a"))
    await client.enqueue(JobSpec(queue="q", name="t", job_id="b"))
    await client.enqueue(JobSpec(queue="q", name="t", job_id="c", run_at_ms=clock.now + 60_000))
    await consumer(redis, clock).claim(1, LEASE_MS)
    counts = (await client.counts(["q", "empty"]))["q"]
    assert (counts.waiting, counts.delayed, counts.active) == (1, 1, 1)
    assert await client.known(["a", "b", "c", "zzz"]) == [True, True, True, False]
