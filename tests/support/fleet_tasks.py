"""Tasks for the fleet tests: a slot holder, and task code that blocks the event loop."""

from __future__ import annotations

import asyncio
import time

from jobdeck_worker import JobContext, TaskRegistry

registry = TaskRegistry()


@registry.task("hold")
async def hold(job: JobContext) -> None:
    """Keeps its slot for ``data`` seconds, politely (the loop stays free)."""
    await asyncio.sleep(float(job.data))


@registry.task("block")
async def block(job: JobContext) -> str:
    """Blocks the whole event loop for ``data.seconds``, as careless task code does (only on
    attempt ``data.only_attempt`` when given)."""
    only = job.data.get("only_attempt")
    if only is None or only == job.attempt:
        time.sleep(float(job.data["seconds"]))  # noqa: ASYNC251 (the point of this task)
    return "done"
