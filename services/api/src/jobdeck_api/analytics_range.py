"""Which rows an analytics request reads: its range, interval and rollup level (pure).

A request names a range (``startDate``/``endDate``, default the last 24 hours) and an
``interval`` (``15min``, ``hour``, ``day``; default picked from the range's length). The
range is widened to whole intervals — the rollups hold whole buckets — and the response
says which range it really covers. 15-minute buckets are read from the minute rollups,
hourly from the hour rollups, daily from the day rollups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

MAX_BUCKETS = 10_000
DEFAULT_RANGE = timedelta(hours=24)


class Interval(StrEnum):
    MIN15 = "15min"
    HOUR = "hour"
    DAY = "day"


WIDTH: dict[Interval, timedelta] = {
    Interval.MIN15: timedelta(minutes=15),
    Interval.HOUR: timedelta(hours=1),
    Interval.DAY: timedelta(days=1),
}
LEVEL: dict[Interval, str] = {
    Interval.MIN15: "minute",
    Interval.HOUR: "hour",
    Interval.DAY: "day",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RangeError(ValueError):
    """The range cannot be served; ``parameter`` names the culprit."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Window:
    """The whole-bucket range a response covers."""

    start: datetime
    end: datetime  # exclusive
    interval: Interval
    requested_start: datetime
    requested_end: datetime

    @property
    def width(self) -> timedelta:
        return WIDTH[self.interval]

    @property
    def level(self) -> str:
        return LEVEL[self.interval]

    @property
    def buckets(self) -> int:
        return int((self.end - self.start) / self.width)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def previous(self) -> Window:
        """The window of the same length just before this one (for "jumped" comparisons)."""
        span = self.end - self.start
        return Window(
            self.start - span,
            self.start,
            self.interval,
            self.requested_start - span,
            self.start,
        )

    def tiles(self) -> list[tuple[str, datetime, datetime]]:
        """The window as disjoint (level, start, end) segments, each at the coarsest level
        that fits: whole days from the day rollups, whole hours from the hour rollups, the
        rest from the minute rollups. Totals and percentiles read these (far fewer rows);
        the per-bucket series read the interval's own level."""
        return tile(self.start, self.end)

    def bucket_starts(self) -> list[datetime]:
        return [self.start + i * self.width for i in range(self.buckets)]


_TILE_LEVELS = (("day", timedelta(days=1)), ("hour", timedelta(hours=1)))


def tile(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Cover [start, end) (whole minutes) with day, then hour, then minute segments."""
    for level, width in _TILE_LEVELS:
        lo, hi = ceil_to(start, width), floor_to(end, width)
        if lo < hi:
            return [*tile(start, lo), (level, lo, hi), *tile(hi, end)]
    return [("minute", start, end)] if start < end else []


def default_interval(span: timedelta) -> Interval:
    """Up to 12 h: 15 min (<= 48 points); up to 14 days: hourly; beyond: daily."""
    if span <= timedelta(hours=12):
        return Interval.MIN15
    if span <= timedelta(days=14):
        return Interval.HOUR
    return Interval.DAY


def floor_to(t: datetime, width: timedelta) -> datetime:
    return t - (t - _EPOCH) % width


def ceil_to(t: datetime, width: timedelta) -> datetime:
    floored = floor_to(t, width)
    return floored if floored == t else floored + width


def resolve(
    start: datetime | None,
    end: datetime | None,
    interval: Interval | None,
    now: datetime,
) -> Window:
    """The window of a request, or ``RangeError`` naming the bad parameter."""
    if end is None:
        end = now if start is None or start < now else start + DEFAULT_RANGE
    if start is None:
        start = end - DEFAULT_RANGE
    if end <= start:
        raise RangeError("endDate", "must be after startDate")
    chosen = interval or default_interval(end - start)
    width = WIDTH[chosen]
    window = Window(floor_to(start, width), ceil_to(end, width), chosen, start, end)
    if window.buckets > MAX_BUCKETS:
        name = "interval" if interval is not None else "startDate"
        raise RangeError(
            name,
            f"the range holds {window.buckets} {chosen.value} buckets, more than {MAX_BUCKETS};"
            " shorten the range or use a longer interval",
        )
    return window
