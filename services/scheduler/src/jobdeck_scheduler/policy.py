"""What to do with a due schedule: which slots fire, which are skipped or missed, and why.

Pure decisions, no I/O: ``plan`` looks at a schedule's persisted next run, the time now,
its policies and the runs still in flight, and returns one decision per slot (missed
slots of one reason grouped into a range) plus the schedule's new next run. The
scheduler acts on the plan inside the transaction that holds the schedule's row.

Lateness (now minus the slot) decides a slot's fate:

- up to ``grace`` — the scheduler is merely behind (a tick, a hand-over): the slot fires;
- past ``grace`` but within the catch-up window — the scheduler was down or stalled: the
  catch-up policy says ``skip`` (missed), ``once`` (the newest fires, the rest are
  missed as coalesced into it) or ``all`` (each fires, the newest ``catch_up_limit``);
- past the window — missed.

Slots that would fire then meet the overlap policy: ``allow`` always fires, ``skip`` fires
only when no earlier run is waiting or running, ``queue_one`` fires only when none is
waiting (one may run). A run whose job the recorder has not seen yet counts as waiting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from jobdeck.cron import CronSchedule
from jobdeck.schedules import CatchUp, Overlap, Trigger


class Action(StrEnum):
    FIRE = "fire"
    SKIP_OVERLAP = "skip_overlap"
    MISS = "miss"


# Beyond this many slots in one plan (a seconds schedule down for a day), the oldest are
# counted into one missed range without being listed one by one.
MAX_SLOTS = 100_000
IN_FLIGHT = frozenset({"waiting", "delayed", "active", None})


@dataclass(frozen=True)
class Policies:
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.ONCE
    catch_up_window: timedelta = timedelta(minutes=15)
    catch_up_limit: int = 100
    jitter_s: int = 0


@dataclass(frozen=True)
class SlotDecision:
    slot: datetime
    action: Action
    trigger: Trigger = Trigger.CRON
    reason: str | None = None
    last_slot: datetime | None = None  # a missed range: its last slot
    count: int = 1
    # when the job should run (slot plus jitter); None = at once
    run_at: datetime | None = None


@dataclass
class Plan:
    decisions: list[SlotDecision] = field(default_factory=list)
    next_run_at: datetime | None = None

    def fires(self) -> list[SlotDecision]:
        return [d for d in self.decisions if d.action is Action.FIRE]


def _late(now: datetime, slot: datetime) -> float:
    return (now - slot).total_seconds()


def jitter_offset(schedule_id: str, slot: datetime, jitter_s: int, room: timedelta) -> timedelta:
    """A delay in [0, jitter_s) fixed per (schedule, slot), never reaching the next slot.

    Derived from a hash rather than drawn at random so that re-planning the same slot (a
    replica died before committing) gives the same job.
    """
    if jitter_s <= 0:
        return timedelta(0)
    digest = hashlib.blake2b(f"{schedule_id}|{slot.isoformat()}".encode(), digest_size=8)
    ms = int.from_bytes(digest.digest(), "big") % (jitter_s * 1000)
    limit_ms = max(0, int(room.total_seconds() * 1000) - 1)
    return timedelta(milliseconds=min(ms, limit_ms))


def plan(
    schedule_id: str,
    cron: CronSchedule,
    next_run_at: datetime,
    now: datetime,
    policies: Policies,
    grace: timedelta,
    in_flight: Sequence[str | None] = (),
) -> Plan:
    """Decide every slot from ``next_run_at`` up to ``now``; see the module docstring.

    ``in_flight`` holds the status of each earlier run whose job is not finished (None
    when the recorder has not seen the job yet).
    """
    slots, older, upcoming = _slots(cron, next_run_at, now, policies.catch_up_window)
    result = Plan(next_run_at=upcoming)
    window_s = policies.catch_up_window.total_seconds()
    if older is not None:
        first, last, count = older
        result.decisions.append(
            SlotDecision(
                first,
                Action.MISS,
                reason=f"at least {count} slots older than the catch-up window ({window_s:.0f} s)",
                last_slot=last,
                count=count,
            )
        )
    candidates: list[SlotDecision] = []
    grace_s = grace.total_seconds()
    due = [s for s in slots if _late(now, s) <= grace_s]
    late = [s for s in slots if grace_s < _late(now, s) <= window_s]
    stale = [s for s in slots if _late(now, s) > window_s]
    for s in stale:
        result.decisions.append(
            SlotDecision(
                s, Action.MISS, reason=f"older than the catch-up window ({window_s:.0f} s)"
            )
        )
    if late:
        late_decisions, late_fires = _catch_up(late, due, policies)
        result.decisions.extend(late_decisions)
        candidates.extend(late_fires)
    following = dict(zip(slots, [*slots[1:], upcoming], strict=False))
    for s in due:
        after = following[s]
        room = (after - s) if after is not None else timedelta(days=366)
        offset = jitter_offset(schedule_id, s, policies.jitter_s, room)
        candidates.append(
            SlotDecision(s, Action.FIRE, Trigger.CRON, run_at=s + offset if offset else None)
        )
    result.decisions.extend(_overlap(candidates, policies.overlap, in_flight))
    result.decisions.sort(key=lambda d: d.slot)
    result.decisions = _merge_missed(result.decisions)
    return result


def _slots(
    cron: CronSchedule, next_run_at: datetime, now: datetime, window: timedelta
) -> tuple[list[datetime], tuple[datetime, datetime, int] | None, datetime | None]:
    """Slots from ``next_run_at`` to ``now`` (inclusive), the range counted but not listed
    (when there are more than MAX_SLOTS), and the first slot after ``now``."""
    slots: list[datetime] = []
    older: tuple[datetime, datetime, int] | None = None
    if next_run_at > now:
        return slots, None, next_run_at
    current: datetime | None = next_run_at
    iterator = cron.after(next_run_at)
    while current is not None and current <= now:
        slots.append(current)
        if len(slots) >= MAX_SLOTS:
            # Too many to list: count them as one missed range and restart from the
            # window's edge, where slots matter again.
            older = (slots[0], slots[-1], len(slots))
            slots = []
            restart = max(current, now - window)
            iterator = cron.after(restart)
        current = next(iterator, None)
    return slots, older, current


def _catch_up(
    late: list[datetime], due: list[datetime], policies: Policies
) -> tuple[list[SlotDecision], list[SlotDecision]]:
    """Decisions for slots past the grace but within the window: (recorded, to fire)."""
    recorded: list[SlotDecision] = []
    fires: list[SlotDecision] = []
    if policies.catch_up is CatchUp.SKIP:
        for s in late:
            recorded.append(SlotDecision(s, Action.MISS, reason="late; catch-up policy is skip"))
    elif policies.catch_up is CatchUp.ONCE:
        if due:
            covered_by = f"covered by the on-time run of {due[-1].isoformat()}"
            for s in late:
                recorded.append(SlotDecision(s, Action.MISS, reason=covered_by))
        else:
            newest = late[-1]
            for s in late[:-1]:
                reason = f"coalesced into the catch-up run of {newest.isoformat()}"
                recorded.append(SlotDecision(s, Action.MISS, reason=reason))
            fires.append(SlotDecision(newest, Action.FIRE, Trigger.CATCH_UP))
    else:
        kept = late[-policies.catch_up_limit :]
        for s in late[: len(late) - len(kept)]:
            reason = f"beyond the catch-up limit of {policies.catch_up_limit} runs"
            recorded.append(SlotDecision(s, Action.MISS, reason=reason))
        fires.extend(SlotDecision(s, Action.FIRE, Trigger.CATCH_UP) for s in kept)
    return recorded, fires


def _overlap(
    candidates: list[SlotDecision], overlap: Overlap, in_flight: Sequence[str | None]
) -> list[SlotDecision]:
    waiting = sum(1 for s in in_flight if s in IN_FLIGHT and s != "active")
    active = sum(1 for s in in_flight if s == "active")
    out: list[SlotDecision] = []
    for c in sorted(candidates, key=lambda d: d.slot):
        if overlap is Overlap.ALLOW:
            blocked = None
        elif overlap is Overlap.SKIP and waiting + active > 0:
            blocked = "the previous run is still waiting or running (overlap policy skip)"
        elif overlap is Overlap.QUEUE_ONE and waiting > 0:
            blocked = "a run is already waiting (overlap policy queue_one)"
        else:
            blocked = None
        if blocked is None:
            out.append(c)
            waiting += 1
        else:
            out.append(SlotDecision(c.slot, Action.SKIP_OVERLAP, c.trigger, reason=blocked))
    return out


def _merge_missed(decisions: list[SlotDecision]) -> list[SlotDecision]:
    """Consecutive missed slots with one reason become one range."""
    merged: list[SlotDecision] = []
    for d in decisions:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.action is Action.MISS
            and d.action is Action.MISS
            and prev.reason == d.reason
        ):
            merged[-1] = SlotDecision(
                prev.slot,
                Action.MISS,
                prev.trigger,
                prev.reason,
                last_slot=d.last_slot or d.slot,
                count=prev.count + d.count,
            )
        else:
            merged.append(d)
    return merged


def fold_failures(statuses: Sequence[str]) -> tuple[bool, int]:
    """From finished runs' job statuses in slot order: (a success reset the count, failures
    since the last success). Cancelled jobs neither count nor reset."""
    reset = False
    tail = 0
    for status in statuses:
        if status == "completed":
            reset, tail = True, 0
        elif status == "failed":
            tail += 1
    return reset, tail
