"""The tasks ``bench/worker.py`` runs on jobdeck workers (``--tasks worker_tasks``, bench/ on
PYTHONPATH); the BullMQ baseline's processor in ``bench/node/bullmq-worker.mjs`` mirrors them."""

from __future__ import annotations

import asyncio
import time

from jobdeck_worker.context import JobContext
from jobdeck_worker.registry import TaskRegistry

registry = TaskRegistry()


@registry.task("noop")
async def noop(job: JobContext) -> None:
    return None


@registry.task("io")
async def io(job: JobContext) -> None:
    """An I/O-bound job: waits ``data.ms`` milliseconds without using the CPU."""
    await asyncio.sleep(float(job.data["ms"]) / 1000)


@registry.task("stamp")
async def stamp(job: JobContext) -> float:
    """How long ago (s, this host's wall clock) the job was enqueued: enqueue-to-start."""
    return time.time() - float(job.data["t"])
