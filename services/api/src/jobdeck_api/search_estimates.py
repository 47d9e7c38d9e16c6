"""What the planner expects of a search, asked once and kept a little while.

``EXPLAIN`` (nothing runs) prices a search's page before it runs and estimates its total
after; planning is most of the CPU either costs, about as much as running the page
itself. Both answers depend only on the statement, its values and the table's
statistics, which change at each ANALYZE, so they are kept per statement and values for
``ttl_s``: a dashboard refreshing a search, or paging it by cursor (the total's statement
has no cursor), plans it once a minute rather than twice a request. The joint statistics
of status and missing times (``search_nulls``) and the span of queues and job names
along a time column (``search_skew``) are kept the same way.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from jobdeck_api.search_head import WalkHead, walk_head
from jobdeck_api.search_nulls import NullStats
from jobdeck_api.search_skew import Restriction, Span, read_span


@dataclass(frozen=True)
class Estimate:
    """The planner's view of a statement: rows it returns and its cost (planner units).

    For a page (a LIMIT query), ``matches`` is the rows under the limit (every match,
    past the cursor if any), and ``walks`` says the page walks an index in the sort
    order, stopping at ``limit`` matches, rather than sorting its matches; ``walk_index``
    names that index."""

    rows: int
    cost: float
    matches: int | None = None
    walks: bool = False
    walk_index: str = ""


# Plan nodes that return rows in index order (a LIMIT over them stops early).
_WALKS = {"Index Scan", "Index Only Scan"}


def parse_plan(explained: Any) -> Estimate:
    root = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    estimate = Estimate(rows=int(root["Plan Rows"]), cost=float(root["Total Cost"]))
    if root["Node Type"] != "Limit":
        return estimate
    child = root["Plans"][0]
    walks = child["Node Type"] in _WALKS
    return Estimate(
        rows=estimate.rows,
        cost=estimate.cost,
        matches=int(child["Plan Rows"]),
        walks=walks,
        walk_index=child.get("Index Name", "") if walks else "",
    )


async def planner_estimate(conn: asyncpg.Connection, sql: str, args: Sequence[Any]) -> Estimate:
    """``EXPLAIN`` (no ANALYZE: nothing runs) of ``sql``; a fraction of a millisecond."""
    return parse_plan(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))


NULL_STATS_SQL = """
SELECT c.reltuples, s.most_common_vals, s.most_common_freqs
FROM pg_class c
LEFT JOIN pg_stats_ext s
  ON s.schemaname = current_schema() AND s.tablename = 'jobs'
 AND s.statistics_name = 'jobs_status_nulls'
WHERE c.oid = 'jobs'::regclass
"""


async def read_null_stats(conn: asyncpg.Connection) -> NullStats | None:
    """None until ANALYZE has run (or when this role may not read the statistics)."""
    row = await conn.fetchrow(NULL_STATS_SQL)
    if row is None or row["most_common_vals"] is None or row["reltuples"] <= 0:
        return None
    return NullStats.from_mcv(
        float(row["reltuples"]), row["most_common_vals"], list(row["most_common_freqs"])
    )


T = TypeVar("T")


def _key(sql: str, args: Sequence[Any]) -> Hashable:
    return (sql, *(tuple(a) if isinstance(a, list) else a for a in args))


class Estimates:
    """Planner estimates per (statement, values), spans per (queues and names, column),
    the heads of walks (``search_head``, but for one given up) and the null statistics,
    each for ``ttl_s``; at most ``size`` of each kind."""

    def __init__(self, ttl_s: float, size: int = 2048) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._plans: OrderedDict[Hashable, tuple[float, Estimate]] = OrderedDict()
        self._spans: OrderedDict[Hashable, tuple[float, Span | None]] = OrderedDict()
        self._nulls: tuple[float, NullStats | None] | None = None
        self._heads: OrderedDict[Hashable, tuple[float, WalkHead]] = OrderedDict()

    async def of(self, conn: asyncpg.Connection, sql: str, args: Sequence[Any]) -> Estimate:
        key = _key(sql, args)
        kept = self._kept(self._plans, key)
        if kept is not None:
            return kept[0]
        estimate = await planner_estimate(conn, sql, args)
        self._keep(self._plans, key, estimate)
        return estimate

    async def span(
        self, conn: asyncpg.Connection, restriction: Restriction, column: str
    ) -> Span | None:
        key = (restriction, column)
        kept = self._kept(self._spans, key)
        if kept is not None:
            return kept[0]
        span = await read_span(conn, restriction, column)
        self._keep(self._spans, key, span)
        return span

    async def head(
        self,
        conn: asyncpg.Connection,
        order: str,
        matches: str,
        args: list[Any],
        need: int,
        rows: int,
    ) -> WalkHead:
        key = _key(f"{order}|{matches}|{need}|{rows}", args)
        kept = self._kept(self._heads, key)
        if kept is not None:
            return kept[0]
        head = await walk_head(conn, order, matches, args, need, rows)
        if not head.timed_out:  # a probe given up says more of the load than of the data
            self._keep(self._heads, key, head)
        return head

    def _kept(
        self, cache: OrderedDict[Hashable, tuple[float, T]], key: Hashable
    ) -> tuple[T] | None:
        entry = cache.get(key)
        if entry is None or time.monotonic() - entry[0] >= self.ttl_s:
            return None
        cache.move_to_end(key)
        return (entry[1],)

    def _keep(self, cache: OrderedDict[Hashable, tuple[float, T]], key: Hashable, value: T) -> None:
        if self.ttl_s > 0:
            cache[key] = (time.monotonic(), value)
            cache.move_to_end(key)
            while len(cache) > self.size:
                cache.popitem(last=False)

    async def null_stats(self, conn: asyncpg.Connection) -> NullStats | None:
        now = time.monotonic()
        if self._nulls is None or now - self._nulls[0] >= self.ttl_s:
            self._nulls = (now, await read_null_stats(conn))
        return self._nulls[1]


ESTIMATES = web.AppKey("search_estimates", Estimates)
