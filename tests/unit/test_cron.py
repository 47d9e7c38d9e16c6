"""Fire times around the 2026 DST transitions, aliases, seconds, validation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from jobdeck.cron import CronError, CronSchedule, parse, zone


def fires(expr: str, tz: str, start_utc: datetime, n: int) -> list[str]:
    """The next ``n`` fire times as local ISO strings (with their offsets)."""
    cron = parse(expr, tz)
    return [t.astimezone(zone(tz)).isoformat() for t in cron.preview(start_utc, n)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Spring-forward: a local time that does not exist fires once, at the transition.
@pytest.mark.parametrize(
    ("expr", "tz", "start", "expected"),
    [
        (
            "30 2 * * *",
            "America/New_York",
            utc(2026, 3, 7, 12),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            utc(2026, 3, 28, 12),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        (
            "15 2 * * *",
            "Australia/Lord_Howe",
            utc(2026, 10, 3, 0),
            ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
        ),
    ],
)
def test_spring_forward_fires_once_at_the_transition(
    expr: str, tz: str, start: datetime, expected: list[str]
) -> None:
    assert fires(expr, tz, start, 2) == expected


# Fall-back: a local time that occurs twice fires once, at its first occurrence.
@pytest.mark.parametrize(
    ("expr", "tz", "start", "expected"),
    [
        (
            "30 1 * * *",
            "America/New_York",
            utc(2026, 10, 31, 12),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            utc(2026, 10, 24, 12),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        (
            "45 1 * * *",
            "Australia/Lord_Howe",
            utc(2026, 4, 4, 0),
            ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
        ),
    ],
)
def test_fall_back_fires_once_first_occurrence(
    expr: str, tz: str, start: datetime, expected: list[str]
) -> None:
    assert fires(expr, tz, start, 2) == expected


def test_restart_inside_the_repeated_hour_does_not_fire_again() -> None:
    """A scheduler that fired 01:30 EDT and restarts at 01:30 EST must not fire again."""
    cron = parse("30 1 * * *", "America/New_York")
    first_fire = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert cron.next_after(first_fire) == utc(2026, 11, 2, 6, 30)
    assert cron.next_after(utc(2026, 11, 1, 6, 30)) == utc(2026, 11, 2, 6, 30)  # 01:30 EST


def test_hourly_and_finer_run_on_absolute_time() -> None:
    # Fall-back in New York: every quarter hour of both 01:00 hours fires (8 in 2 h).
    quarter = parse("*/15 * * * *", "America/New_York").preview(utc(2026, 11, 1, 4, 59), 8)
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(quarter)] == [900.0] * 7
    # Spring-forward in Berlin: hourly never shifts; 02:00 does not exist, 01:00 -> 03:00 is 1 h.
    hourly = parse("0 * * * *", "Europe/Berlin").preview(utc(2026, 3, 28, 23, 30), 3)
    assert hourly == [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)]
    # Lord Howe falls back 30 min: 01:00 +11 then 02:00 +10:30, 90 absolute minutes apart.
    lh = fires("0 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 13, 30), 2)
    assert lh == ["2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+10:30"]


def test_aliases_seconds_and_descriptions() -> None:
    assert parse("@hourly", "UTC").fields == "0 * * * *"
    assert parse("@DAILY", "UTC").fields == "0 0 * * *"
    secs = parse("*/5 * * * * *", "UTC")
    assert secs.has_seconds
    assert secs.preview(utc(2026, 1, 1), 2) == [utc(2026, 1, 1, 0, 0, 5), utc(2026, 1, 1, 0, 0, 10)]
    assert parse("0 2 * * *", "America/New_York").describe() == (
        "At 02:00 every day (America/New_York)"
    )
    assert parse("0 9 * * 1-5", "UTC").describe().startswith("At 09:00 on Monday through Friday")


@pytest.mark.parametrize(
    ("expr", "tz", "field"),
    [
        ("61 * * * *", "UTC", "cronExpression"),
        ("* * * *", "UTC", "cronExpression"),
        ("* * * * * * *", "UTC", "cronExpression"),
        ("@reboot", "UTC", "cronExpression"),
        ("0 0 30 2 *", "UTC", "cronExpression"),
        ("", "UTC", "cronExpression"),
        ("0 0 * * *", "Mars/Olympus", "timezone"),
        ("0 0 * * *", "../../etc/passwd", "timezone"),
    ],
)
def test_invalid(expr: str, tz: str, field: str) -> None:
    with pytest.raises(CronError) as err:
        parse(expr, tz)
    assert err.value.field == field


def test_schedule_is_plain_data() -> None:
    assert CronSchedule("0 2 * * *", "UTC") == parse(" 0  2 * * * ", "UTC")
