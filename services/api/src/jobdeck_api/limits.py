"""What one request may cost the database, so that no viewer can pin the connection pool.

Three layers, each a backstop for the one before:

1. bounds checked before any SQL runs (``models``: deep offsets, short substrings);
2. the planner's estimate of a search, read with ``EXPLAIN`` before running it
   (``search_guard``): a search that would read far more rows than its page is refused
   with a 422 that says what to ask instead, and a costly one that is still allowed runs in
   the *heavy lane*, a few connections at most, so cheap requests always find one free;
3. a statement timeout on every connection of the pool: whatever slips past the planner's
   estimate is cancelled by Postgres itself and answered with a 503 and a hint.

Read once at start-up from ``JOBDECK_API_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields, replace

from aiohttp import web

from jobdeck_api.errors import Unavailable
from jobdeck_api.search_models import EXACT_TOTAL_MAX


@dataclass(frozen=True)
class CostLimits:
    # Every API statement is cancelled by Postgres past this (0 switches it off).
    statement_timeout_ms: int = 5_000
    # Searches the planner prices above ``heavy_cost`` (or that count everything) run at
    # most ``heavy_slots`` at a time per process; one waits ``heavy_wait_ms`` for a slot,
    # then gets a 503. The pool has 10 connections: 7 stay free for everything else.
    heavy_slots: int = 3
    heavy_wait_ms: int = 2_000
    heavy_cost: float = 2_000.0
    # A search page the planner prices above this is refused (422, with what to do).
    # Planner cost units; calibrated on the 10M-row bench database (see README): pages an
    # index serves cost under 1,000 and run in under 25 ms; plans that read and sort their
    # matches cost 12,000 and up and run 150 ms and more.
    refuse_cost: float = 5_000.0
    # A priced search's page is cancelled past this and refused (422): the planner misjudged
    # it (matches far apart along the index it walks). The simplest shape has no budget.
    page_budget_ms: int = 500
    # A page whose sort order puts a block of jobs lacking its value first (NULLs of an
    # ascending startedAt/finishedAt/duration sort; the jobs having one, descending) is
    # refused up front when the joint statistics of status and NULLs say it would read
    # more than this many rows of that block before its matches (``search_nulls``):
    # ~100 ms of an index walk with heap fetches on the bench machine.
    walk_max_rows: int = 20_000
    # Planner estimates and statistics are kept this long per statement (``search_estimates``).
    estimate_ttl_s: int = 60
    # exactTotal counts at most this many matches; a larger estimate is refused up front.
    exact_total_max: int = EXACT_TOTAL_MAX

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CostLimits:
        """``JOBDECK_API_STATEMENT_TIMEOUT_MS`` etc.; a malformed value fails at start-up."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"JOBDECK_API_{f.name.upper()}")
            if raw is None:
                continue
            value: float = float(raw) if f.type == "float" else int(raw)
            if value < 0 or (f.name == "heavy_slots" and value < 1):
                raise ValueError(f"JOBDECK_API_{f.name.upper()}: {raw!r} is out of range")
            values[f.name] = value
        return replace(cls(), **values)  # type: ignore[arg-type]

    def server_settings(self) -> dict[str, str]:
        """Per-connection Postgres settings of the API's pool."""
        return {"statement_timeout": str(self.statement_timeout_ms)}


class HeavyLane:
    """At most ``slots`` costly searches at once; the rest wait a little, then get a 503."""

    def __init__(self, limits: CostLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.heavy_slots)

    @contextlib.asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._slots.acquire(), self.limits.heavy_wait_ms / 1000)
        except TimeoutError:
            raise Unavailable(
                f"{self.limits.heavy_slots} costly searches are already running; retry in a"
                " moment, or narrow this one (queues, status, a date range, sort by createdAt)"
                " so that it is cheap and needs no wait",
                retry_after_s=1,
            ) from None
        try:
            yield
        finally:
            self._slots.release()


LIMITS = web.AppKey("cost_limits", CostLimits)
HEAVY_LANE = web.AppKey("heavy_lane", HeavyLane)
