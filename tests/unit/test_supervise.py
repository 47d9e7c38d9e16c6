"""Supervised background loops: a dead loop fails readiness, is restarted, and settles."""

from __future__ import annotations

import asyncio

import pytest
from jobdeck.supervise import LoopDown, Supervisor

from tests.support.processes import wait_for


async def _ready(supervisor: Supervisor) -> bool:
    try:
        await supervisor.check()
    except LoopDown:
        return False
    return True


async def test_a_loop_that_raises_is_restarted_and_readiness_follows() -> None:
    runs: list[int] = []
    release = asyncio.Event()

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            await release.wait()
            raise RuntimeError("stream reader lost its place")
        await asyncio.Event().wait()  # the second run keeps running

    supervisor = Supervisor(backoff_min_s=0.01, settle_s=0.3)
    supervisor.start("reader", flaky)
    try:
        assert await _ready(supervisor)
        release.set()
        await wait_for(lambda: _down(supervisor), timeout=5, what="readiness to fail")
        with pytest.raises(LoopDown, match=r"reader.*RuntimeError: stream reader lost its place"):
            await supervisor.check()
        await wait_for(lambda: _ready(supervisor), timeout=5, what="the loop to settle again")
        assert len(runs) == 2
        status = supervisor.status()["reader"]
        assert status["running"] is True and status["restarts"] == 1
    finally:
        await supervisor.stop()


async def _down(supervisor: Supervisor) -> bool:
    return not await _ready(supervisor)


async def test_a_loop_that_ends_or_is_cancelled_by_accident_is_restarted() -> None:
    started = asyncio.Queue[int]()

    async def short() -> None:
        await started.put(1)  # returns at once: a loop that should never end did

    supervisor = Supervisor(backoff_min_s=0.01, backoff_max_s=0.02, settle_s=10)
    supervisor.start("janitor", short)
    try:
        for _ in range(3):
            await asyncio.wait_for(started.get(), 5)
        assert supervisor.status()["janitor"]["restarts"] >= 2
        assert supervisor.status()["janitor"]["lastError"] == "ended"
        assert not await _ready(supervisor)
    finally:
        await supervisor.stop()

    forever = Supervisor(backoff_min_s=0.01, settle_s=0)
    forever.start("fanout", lambda: asyncio.Event().wait())
    try:
        task = forever.loops["fanout"].task
        assert task is not None
        task.cancel()  # killed by something other than stop()
        await wait_for(
            lambda: _restarted(forever, "fanout", task), timeout=5, what="a fresh fan-out task"
        )
        assert forever.status()["fanout"]["lastError"] == "cancelled"
    finally:
        await forever.stop()


async def _restarted(supervisor: Supervisor, name: str, old: asyncio.Task[None]) -> bool:
    task = supervisor.loops[name].task
    return task is not old and task is not None and not task.done()


async def test_stop_waits_for_a_graceful_end_and_restarts_nothing() -> None:
    stop = asyncio.Event()
    finished: list[str] = []

    async def consumer() -> None:
        await stop.wait()
        finished.append("acked the batch in hand")

    supervisor = Supervisor(backoff_min_s=0.01)
    supervisor.start("consumer", consumer, stop=stop.set)
    await supervisor.stop(grace_s=5)
    assert finished == ["acked the batch in hand"]
    assert supervisor.status()["consumer"]["restarts"] == 0
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.start("consumer", consumer)
