"""Task functions for the end-to-end pipeline tests (loaded by the worker with ``--tasks``)."""

from __future__ import annotations

import asyncio
from typing import Any

from jobdeck_worker.context import JobContext
from jobdeck_worker.registry import TaskRegistry

registry = TaskRegistry()


@registry.task("steps")
async def steps(job: JobContext) -> dict[str, Any]:
    """Reports progress and logs a line per step; sleeps ``data.pause`` seconds between steps."""
    count = int(job.data.get("steps", 2))
    for step in range(1, count + 1):
        job.log("info", f"step {step} of {count}")
        await job.progress(100 * step / count, f"step {step}")
        await asyncio.sleep(float(job.data.get("pause", 0)))
    return {"steps": count, "n": job.data.get("n")}


@registry.task("flaky")
async def flaky(job: JobContext) -> str:
    """Fails until attempt ``data.succeed_on``."""
    job.log("info", f"attempt {job.attempt}")
    if job.attempt < int(job.data["succeed_on"]):
        raise ConnectionError(f"upstream refused attempt {job.attempt}")
    return "recovered"


@registry.task("doomed")
async def doomed(job: JobContext) -> None:
    job.log("warning", "about to fail")
    raise ValueError(f"bad input {job.data.get('n')}")


@registry.task("hang")
async def hang(job: JobContext) -> None:
    """Runs until cancelled."""
    job.log("info", "hanging")
    await asyncio.sleep(3600)
