"""Exceptions task code and the runtime raise to steer what happens to a job."""

from __future__ import annotations

from jobdeck import JobdeckError


class WorkerError(JobdeckError):
    """The worker runtime refused or could not run a job."""


class NonRetryableError(WorkerError):
    """Raise from a task to fail the job at once: retrying cannot help (bad input, say)."""


class UnknownTask(NonRetryableError):
    """No task with this name is registered on this queue."""


class MalformedJob(NonRetryableError):
    """The job's envelope is not what ``JobSpec.envelope()`` produces."""


class JobTimeout(WorkerError, TimeoutError):
    """The task ran longer than the job's timeout."""
