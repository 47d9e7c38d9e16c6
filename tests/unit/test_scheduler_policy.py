"""The scheduler's pure decisions: lateness, catch-up and overlap policies, jitter, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobdeck.cron import parse
from jobdeck.schedules import CatchUp, Overlap, Trigger
from jobdeck_scheduler.policy import Action, Policies, fold_failures, jitter_offset, plan

MINUTELY = parse("* * * * *", "UTC")
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=10)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_on_time_slot_fires_and_advances() -> None:
    p = plan("s", MINUTELY, T0, T0 + timedelta(seconds=0.2), Policies(), GRACE)
    assert [(d.slot, d.action, d.trigger) for d in p.decisions] == [(T0, Action.FIRE, Trigger.CRON)]
    assert p.next_run_at == T0 + minutes(1)


def test_not_due_yet_changes_nothing() -> None:
    p = plan("s", MINUTELY, T0, T0 - timedelta(seconds=1), Policies(), GRACE)
    assert p.decisions == [] and p.next_run_at == T0


def test_catch_up_once_runs_newest_and_records_the_rest() -> None:
    now = T0 + minutes(5) + timedelta(seconds=30)  # down for 5.5 minutes
    p = plan("s", MINUTELY, T0, now, Policies(catch_up=CatchUp.ONCE), GRACE)
    missed, fired = p.decisions
    assert missed.action is Action.MISS and missed.count == 5
    assert missed.slot == T0 and missed.last_slot == T0 + minutes(4)
    assert "coalesced" in (missed.reason or "")
    assert fired.action is Action.FIRE and fired.trigger is Trigger.CATCH_UP
    assert fired.slot == T0 + minutes(5)
    assert p.next_run_at == T0 + minutes(6)


def test_catch_up_skip_and_all() -> None:
    now = T0 + minutes(3) + timedelta(seconds=30)
    skip = plan("s", MINUTELY, T0, now, Policies(catch_up=CatchUp.SKIP), GRACE)
    assert [(d.action, d.count) for d in skip.decisions] == [(Action.MISS, 4)]
    every = plan(
        "s", MINUTELY, T0, now, Policies(catch_up=CatchUp.ALL, overlap=Overlap.ALLOW), GRACE
    )
    assert [d.action for d in every.decisions] == [Action.FIRE] * 4
    capped = plan(
        "s",
        MINUTELY,
        T0,
        now,
        Policies(catch_up=CatchUp.ALL, overlap=Overlap.ALLOW, catch_up_limit=2),
        GRACE,
    )
    assert [(d.action, d.count) for d in capped.decisions] == [
        (Action.MISS, 2),
        (Action.FIRE, 1),
        (Action.FIRE, 1),
    ]


def test_slots_past_the_window_are_missed_every_one_accounted_for() -> None:
    now = T0 + minutes(30)
    p = plan("s", MINUTELY, T0, now, Policies(catch_up_window=minutes(10)), GRACE)
    total = sum(d.count for d in p.decisions)
    assert total == 31  # 12:00 .. 12:30, each slot either fired or recorded
    assert p.decisions[0].action is Action.MISS and "window" in (p.decisions[0].reason or "")
    assert p.decisions[-1].action is Action.FIRE and p.decisions[-1].slot == now


def test_within_grace_every_slot_fires_as_on_time() -> None:
    secs = parse("* * * * * *", "UTC")
    p = plan("s", secs, T0, T0 + timedelta(seconds=4), Policies(overlap=Overlap.ALLOW), GRACE)
    assert [d.action for d in p.decisions] == [Action.FIRE] * 5
    assert all(d.trigger is Trigger.CRON for d in p.decisions)


def test_overlap_policies() -> None:
    now = T0 + timedelta(seconds=1)
    skip = plan("s", MINUTELY, T0, now, Policies(overlap=Overlap.SKIP), GRACE, ["active"])
    assert skip.decisions[0].action is Action.SKIP_OVERLAP
    unrecorded = plan("s", MINUTELY, T0, now, Policies(), GRACE, [None])
    assert unrecorded.decisions[0].action is Action.SKIP_OVERLAP
    q1 = Policies(overlap=Overlap.QUEUE_ONE)
    assert plan("s", MINUTELY, T0, now, q1, GRACE, ["active"]).fires()
    assert not plan("s", MINUTELY, T0, now, q1, GRACE, ["active", "waiting"]).fires()
    allow = Policies(overlap=Overlap.ALLOW)
    assert plan("s", MINUTELY, T0, now, allow, GRACE, ["active", "waiting"]).fires()
    # Within one plan, a fired slot counts as waiting for the next one.
    secs = parse("* * * * * *", "UTC")
    burst = plan("s", secs, T0, T0 + timedelta(seconds=2), Policies(), GRACE)
    assert [d.action for d in burst.decisions] == [
        Action.FIRE,
        Action.SKIP_OVERLAP,
        Action.SKIP_OVERLAP,
    ]


def test_jitter_is_stable_and_stays_before_the_next_slot() -> None:
    a = jitter_offset("s", T0, 3600, minutes(1))
    assert a == jitter_offset("s", T0, 3600, minutes(1))
    assert timedelta(0) <= a < minutes(1)
    assert jitter_offset("s", T0, 0, minutes(1)) == timedelta(0)
    p = plan("s", MINUTELY, T0, T0, Policies(jitter_s=30), GRACE)
    run_at = p.decisions[0].run_at
    assert run_at is None or T0 <= run_at < T0 + timedelta(seconds=30)


def test_fold_failures() -> None:
    assert fold_failures(["failed", "failed"]) == (False, 2)
    assert fold_failures(["failed", "completed", "failed"]) == (True, 1)
    assert fold_failures(["cancelled"]) == (False, 0)
    assert fold_failures(["failed", "completed"]) == (True, 0)


def test_huge_backlog_is_counted_not_listed() -> None:
    secs = parse("* * * * * *", "UTC")
    now = T0 + timedelta(days=2)
    p = plan("s", secs, T0, now, Policies(catch_up_window=minutes(1)), GRACE)
    assert p.decisions[0].action is Action.MISS and p.decisions[0].count >= 100_000
    assert p.decisions[-1].slot == now and p.next_run_at == now + timedelta(seconds=1)
