"""Totals of a window from the rollups: per (queue, job name), per queue and overall.

``grouped_totals`` sums the rollup rows of the window's tiles (``Scope.args``) into one
``Group`` per (queue, name), per (queue, None) and for (None, None), with the duration and
wait histograms when a report needs all percentiles; ``add_durations`` adds the duration
histograms of a few groups only.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
from jobdeck.histogram import Histogram, merge, percentile

from jobdeck_api.analytics_range import Window
from jobdeck_api.analytics_scope import SQL, Scope


@dataclass
class Group:
    """Totals of one (queue, name) group, or of a queue, or of everything."""

    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    retried: int = 0
    timed: int = 0
    duration_sum: int = 0
    duration_min: int | None = None
    duration_max: int | None = None
    waited: int = 0
    wait_sum: int = 0
    duration_hist: list[Histogram] = field(default_factory=list)
    wait_hist: list[Histogram] = field(default_factory=list)

    def add(self, r: asyncpg.Record) -> None:
        self.by_status[r["status"]] += int(r["jobs"])
        self.retried += int(r["retried"])
        self.timed += int(r["timed"])
        self.duration_sum += int(r["duration_sum"])
        self.waited += int(r["waited"])
        self.wait_sum += int(r["wait_sum"])
        for attr, value, pick in (
            ("duration_min", r["duration_min"], min),
            ("duration_max", r["duration_max"], max),
        ):
            if value is not None:
                current = getattr(self, attr)
                setattr(self, attr, value if current is None else pick(current, value))

    def p95_duration(self) -> float | None:
        return percentile(merge(self.duration_hist), 0.95, self.duration_min, self.duration_max)


@dataclass
class Totals:
    groups: dict[tuple[str | None, str | None], Group]

    def queues(self) -> list[str]:
        return sorted({q for q, n in self.groups if q is not None and n is None})

    def names(self) -> list[tuple[str, str]]:
        return sorted((q, n) for q, n in self.groups if q is not None and n is not None)


async def grouped_totals(
    pg: asyncpg.Pool, scope: Scope, window: Window | None = None, histograms: bool = False
) -> Totals:
    """Totals per (queue, name), per queue and overall; with all their histograms if asked
    (totals, durations and waits read at once, on three connections)."""
    args = scope.args(window)
    queries = [pg.fetch(SQL["totals"], *args)]
    if histograms:
        queries += [pg.fetch(SQL["histograms"], *args, None, None, kind) for kind in ("d", "w")]
    results = await asyncio.gather(*queries)
    groups: dict[tuple[str | None, str | None], Group] = defaultdict(Group)
    groups[(None, None)] = Group()
    for r in results[0]:
        for key in ((None, None), (r["queue"], None), (r["queue"], r["name"])):
            groups[key].add(r)
    totals = Totals(groups)
    for rows in results[1:]:
        _add_histograms(totals, rows, rollup=True)
    return totals


async def add_durations(
    pg: asyncpg.Pool, scope: Scope, totals: Totals, pairs: list[tuple[str, str]]
) -> None:
    """The duration histograms of these (queue, name) groups only, into their groups."""
    if pairs:
        rows = await pg.fetch(
            SQL["histograms"], *scope.args(), [q for q, _ in pairs], [n for _, n in pairs], "d"
        )
        _add_histograms(totals, rows, rollup=False)


def _add_histograms(totals: Totals, rows: list[asyncpg.Record], rollup: bool) -> None:
    """Each (queue, name) histogram into its group; also into its queue's and the overall
    group when ``rollup``."""
    for r in rows:
        hist = {int(k): int(v) for k, v in r["hist"].items()}
        keys = ((None, None), (r["queue"], None)) if rollup else ()
        for key in (*keys, (r["queue"], r["name"])):
            group = totals.groups[key]
            (group.duration_hist if r["kind"] == "d" else group.wait_hist).append(hist)
