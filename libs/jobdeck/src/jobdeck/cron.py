"""Cron expressions with time zones: validation, fire times, a plain-English description.

One home for "when does this schedule fire", shared by the API (validation, ``nextRunAt``,
previews) and the scheduler (advancing ``next_run_at``), so both always agree.

Fire times come from cronsim, which follows Debian cron around DST changes — what cron
users expect, and what APScheduler 3.11 and croniter get wrong (both fire ``30 1 * * *``
twice on a fall-back day):

- a local time skipped by spring-forward fires once, at the transition
  (``30 2 * * *`` in New York on 2026-03-08 fires at 03:00 EDT);
- a local time repeated by fall-back fires once, at its first occurrence;
- expressions with a wildcard hour (hourly or finer) run on absolute time: every
  matching wall-clock instant fires, none is shifted, a repeated hour runs twice and a
  skipped one not at all.

Expressions have 5 fields, or 6 with a leading seconds field (``*/5 * * * * *``), or are
one of the ``@yearly``/``@monthly``/``@weekly``/``@daily``/``@hourly`` aliases.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from jobdeck import JobdeckError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_EXPRESSION_LENGTH = 200


class CronError(JobdeckError):
    """Not a valid cron expression or time zone."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; CronError (field ``timezone``) if there is none."""
    if name not in _zone_names() and name != "UTC":
        raise CronError("timezone", f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError("timezone", f"{name!r} is not an IANA time zone") from exc


def normalize(expression: str) -> str:
    """The 5- or 6-field form of ``expression`` (aliases expanded, whitespace collapsed)."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        try:
            return ALIASES[text.lower()]
        except KeyError:
            names = ", ".join(sorted(ALIASES))
            raise CronError(
                "cronExpression", f"{text!r} is not a known alias (one of {names})"
            ) from None
    return text


@dataclass(frozen=True)
class CronSchedule:
    """A validated expression in a zone; iterate fire times with ``after``."""

    expression: str
    timezone: str

    @property
    def fields(self) -> str:
        return normalize(self.expression)

    @property
    def has_seconds(self) -> bool:
        return len(self.fields.split()) == 6

    def after(self, instant: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``instant``, in UTC, ascending."""
        local = instant.astimezone(zone(self.timezone))
        for fire in CronSim(self.fields, local):
            yield fire.astimezone(UTC)

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.after(instant), None)

    def preview(self, instant: datetime, count: int) -> list[datetime]:
        out: list[datetime] = []
        for fire in self.after(instant):
            out.append(fire)
            if len(out) >= count:
                break
        return out

    def describe(self) -> str:
        """A plain-English description, e.g. "At 02:00 every day (America/New_York)"."""
        try:
            text = CronSim(self.fields, datetime.now(UTC)).explain()
        except (CronSimError, ValueError, IndexError, KeyError):
            text = self.fields
        return f"{text} ({self.timezone})"


def parse(expression: str, timezone: str) -> CronSchedule:
    """Validate ``expression`` in ``timezone``; CronError names the field and the reason.

    An expression that parses but never fires (``0 0 31 2 *``) is refused too.
    """
    zone(timezone)
    if not expression.strip():
        raise CronError("cronExpression", "must not be empty")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CronError("cronExpression", f"longer than {MAX_EXPRESSION_LENGTH} characters")
    fields = normalize(expression)
    count = len(fields.split())
    if count not in (5, 6):
        raise CronError(
            "cronExpression",
            f"{expression!r} has {count} fields; give 5 (minute hour day month weekday), "
            "6 (a leading seconds field) or an @alias",
        )
    try:
        CronSim(fields, datetime.now(UTC))
    except (CronSimError, ValueError) as exc:
        raise CronError("cronExpression", f"{expression!r}: {exc}") from None
    return CronSchedule(expression=" ".join(expression.split()), timezone=timezone)
