"""Task registration: users map names to plain async functions taking a ``JobContext``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobdeck_worker.context import JobContext

TaskFunction = Callable[["JobContext"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    function: TaskFunction
    queues: frozenset[str] | None  # None: available on every queue this process serves


class TaskRegistry:
    """Named task functions of one worker process.

    A task may be limited to some queues; a job naming a task that is not available on its
    queue fails at once with a clear message instead of running the wrong code.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def task(
        self, name: str, *, queues: Iterable[str] | None = None
    ) -> Callable[[TaskFunction], TaskFunction]:
        def register(function: TaskFunction) -> TaskFunction:
            self.add(name, function, queues=queues)
            return function

        return register

    def add(
        self, name: str, function: TaskFunction, *, queues: Iterable[str] | None = None
    ) -> None:
        if not name:
            raise ValueError("a task needs a non-empty name")
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"task {name!r} must be an async function, got {function!r}")
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already registered")
        self._tasks[name] = Task(name, function, frozenset(queues) if queues is not None else None)

    def get(self, name: str, queue: str) -> TaskFunction | None:
        task = self._tasks.get(name)
        if task is None or (task.queues is not None and queue not in task.queues):
            return None
        return task.function

    def names(self, queue: str | None = None) -> list[str]:
        return sorted(
            t.name
            for t in self._tasks.values()
            if queue is None or t.queues is None or queue in t.queues
        )

    def __len__(self) -> int:
        return len(self._tasks)
