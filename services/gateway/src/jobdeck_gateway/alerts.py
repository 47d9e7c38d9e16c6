"""Which alerts are breached, and which transitions to announce (pure decisions, no I/O).

An alert is raised once when its value crosses its threshold and cleared once when it
is back under; in between nothing is sent. The raised set lives in Redis (shared by the
replicas), so these functions only compare an observation with that set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from jobdeck.usage import ResourceBreach


class AlertKind(StrEnum):
    FAILURE_RATE = "failure_rate"
    WAITING_BACKLOG = "waiting_backlog"
    OLDEST_WAITING = "oldest_waiting"
    NO_WORKER = "no_worker"
    RECORDER_LAG = "recorder_lag"
    PROCESS_CPU = "process_cpu"
    PROCESS_RSS = "process_rss"
    REDIS_MEMORY = "redis_memory"
    PG_CONNECTIONS = "pg_connections"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


SEVERITY = {
    AlertKind.FAILURE_RATE: Severity.CRITICAL,
    AlertKind.WAITING_BACKLOG: Severity.WARNING,
    AlertKind.OLDEST_WAITING: Severity.WARNING,
    AlertKind.NO_WORKER: Severity.CRITICAL,
    AlertKind.RECORDER_LAG: Severity.WARNING,
    AlertKind.PROCESS_CPU: Severity.WARNING,
    AlertKind.PROCESS_RSS: Severity.WARNING,
    AlertKind.REDIS_MEMORY: Severity.CRITICAL,
    AlertKind.PG_CONNECTIONS: Severity.CRITICAL,
}

SYSTEM = "*"  # the queue of system-wide alerts


@dataclass(frozen=True)
class Observation:
    """One measured value against its threshold; ``breached`` says whether it alerts now."""

    kind: AlertKind
    queue: str
    value: float
    threshold: float
    breached: bool
    subject: str = ""  # what a system alert is about: a process, redis, postgres

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.queue, self.subject)


def alert_key(kind: AlertKind, queue: str, subject: str = "") -> str:
    """``kind:queue``, or ``kind:queue|subject`` ("|" is never part of a queue name)."""
    return f"{kind}:{queue}|{subject}" if subject else f"{kind}:{queue}"


@dataclass(frozen=True)
class QueueAlertInputs:
    """What one queue's alert rules look at (thresholds None = rule off)."""

    queue: str
    waiting: int = 0
    live_workers: int = 0
    failed_in_window: int = 0
    finished_in_window: int = 0
    oldest_waiting_s: float | None = None
    failure_rate_threshold: float | None = None
    failure_window_s: int = 300
    backlog_threshold: int | None = None
    oldest_waiting_threshold_s: int | None = None
    watch_workers: bool = True


@dataclass(frozen=True)
class Transition:
    observation: Observation
    state: AlertState

    @property
    def message(self) -> str:
        return describe(self.observation, self.state)


def failure_rate(failed: int, finished: int) -> float:
    return failed / finished if finished else 0.0


def observe_queue(q: QueueAlertInputs) -> list[Observation]:
    """Every rule configured for one queue, measured."""
    found: list[Observation] = []
    if q.failure_rate_threshold is not None:
        rate = failure_rate(q.failed_in_window, q.finished_in_window)
        found.append(
            Observation(
                AlertKind.FAILURE_RATE,
                q.queue,
                round(rate, 4),
                q.failure_rate_threshold,
                q.finished_in_window > 0 and rate > q.failure_rate_threshold,
            )
        )
    if q.backlog_threshold is not None:
        found.append(
            Observation(
                AlertKind.WAITING_BACKLOG,
                q.queue,
                q.waiting,
                q.backlog_threshold,
                q.waiting > q.backlog_threshold,
            )
        )
    if q.oldest_waiting_threshold_s is not None:
        age = q.oldest_waiting_s or 0.0
        found.append(
            Observation(
                AlertKind.OLDEST_WAITING,
                q.queue,
                round(age, 1),
                q.oldest_waiting_threshold_s,
                age > q.oldest_waiting_threshold_s,
            )
        )
    if q.watch_workers:
        found.append(
            Observation(
                AlertKind.NO_WORKER,
                q.queue,
                q.waiting,
                0,
                q.waiting > 0 and q.live_workers == 0,
            )
        )
    return found


def observe_resources(checks: Iterable[ResourceBreach]) -> list[Observation]:
    """Resource rules (``jobdeck.usage.resource_checks``) as system alerts, one per subject."""
    return [
        Observation(AlertKind(c.kind), SYSTEM, c.value, c.threshold, c.breached, c.subject)
        for c in checks
    ]


def observe_recorder(lag: int | None, threshold: int) -> list[Observation]:
    if lag is None:
        return []
    return [Observation(AlertKind.RECORDER_LAG, SYSTEM, lag, threshold, lag > threshold)]


def transitions(
    observations: Iterable[Observation], raised: Mapping[str, object]
) -> list[Transition]:
    """Alerts to raise (breached, not yet raised) and to clear (raised, no longer breached).

    A raised alert whose rule was switched off or whose queue disappeared is cleared too.
    """
    result: list[Transition] = []
    seen: set[str] = set()
    for obs in observations:
        seen.add(obs.key)
        if obs.breached and obs.key not in raised:
            result.append(Transition(obs, AlertState.RAISED))
        elif not obs.breached and obs.key in raised:
            result.append(Transition(obs, AlertState.CLEARED))
    for key in raised:
        if key not in seen:
            kind, _, rest = key.partition(":")
            queue, _, subject = rest.partition("|")
            try:
                alert_kind = AlertKind(kind)
            except ValueError:
                continue
            result.append(
                Transition(Observation(alert_kind, queue, 0, 0, False, subject), AlertState.CLEARED)
            )
    return result


def describe(obs: Observation, state: AlertState) -> str:
    if obs.subject:
        return _describe_resource(obs, state)
    where = "recorder" if obs.queue == SYSTEM else f"queue {obs.queue!r}"
    if state is AlertState.CLEARED:
        return f"{obs.kind.replace('_', ' ')} back to normal on {where}"
    if obs.kind is AlertKind.FAILURE_RATE:
        return f"{where}: failure rate {obs.value:.0%} above {obs.threshold:.0%}"
    if obs.kind is AlertKind.WAITING_BACKLOG:
        return f"{where}: {obs.value:.0f} jobs waiting, above {obs.threshold:.0f}"
    if obs.kind is AlertKind.OLDEST_WAITING:
        return f"{where}: oldest waiting job is {obs.value:.0f}s old, above {obs.threshold:.0f}s"
    if obs.kind is AlertKind.NO_WORKER:
        return f"{where}: {obs.value:.0f} jobs waiting and no live worker"
    return f"recorder is {obs.value:.0f} events behind, above {obs.threshold:.0f}"


_RESOURCE_TEXT = {
    AlertKind.PROCESS_CPU: ("CPU", "%"),
    AlertKind.PROCESS_RSS: ("memory (RSS)", " MB"),
    AlertKind.REDIS_MEMORY: ("memory", "% of maxmemory"),
    AlertKind.PG_CONNECTIONS: ("connections", "% of max_connections"),
}


def _describe_resource(obs: Observation, state: AlertState) -> str:
    """The subject first (``api:api-4242``, ``redis``, ``postgres``), then the figure."""
    what, unit = _RESOURCE_TEXT.get(obs.kind, (str(obs.kind), ""))
    if state is AlertState.CLEARED:
        return f"{obs.subject} {what} back to normal"
    return f"{obs.subject} {what} {obs.value:g}{unit}, above {obs.threshold:g}{unit}"
