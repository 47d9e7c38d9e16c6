"""jobdeck worker service: runs registered async tasks from the jobdeck queues."""

from jobdeck_worker.context import JobContext
from jobdeck_worker.errors import NonRetryableError
from jobdeck_worker.registry import TaskRegistry

__all__ = ["JobContext", "NonRetryableError", "TaskRegistry"]
