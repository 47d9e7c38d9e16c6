"""The Lua scripts of the queue protocol, one ``lua/<name>.lua`` file each, read once.

Each script documents its KEYS, ARGV and reply at its top; ``producer`` and ``consumer``
are their only callers.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@cache
def source(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text()


def register(redis: Redis, name: str) -> AsyncScript:
    """The script bound to ``redis`` (EVALSHA, loaded again by redis-py after a restart)."""
    return redis.register_script(source(name))
