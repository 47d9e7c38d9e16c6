"""The per-job loop every command on existing jobs shares (retry, cancel, delete, promote,
change priority): read the jobs' rows, answer ``not_found`` for an id the caller may not see,
``skipped`` with the reason for one the command's verdict refuses, and act on the rest.

Each command brings its own pure verdict and its act; the results come back one per id, in
the order of the ids, whatever order the act worked in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from jobdeck.web import PG

from jobdeck_api.decisions import Verdict
from jobdeck_api.job_command_models import JobActionResult, JobOutcome
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest

Row = Mapping[str, Any]
# May the command act on this job's row? Pure (see ``decisions``).
RowVerdict = Callable[[Row], Verdict]
# Acts on the allowed rows: one result per row, in their order.
RowsAct = Callable[[ApiRequest[Any, Any], list[Row]], Awaitable[list[JobActionResult]]]
# Acts on one allowed row.
RowAct = Callable[[ApiRequest[Any, Any], Row], Awaitable[JobActionResult]]


def skipped(row: Row, reason: str | None) -> JobActionResult:
    """The job stays as it is, for ``reason``."""
    return JobActionResult(
        id=row["id"], outcome=JobOutcome.SKIPPED, reason=reason, previous_status=row["status"]
    )


def triage(
    ids: Sequence[str],
    rows: Mapping[str, Row],
    can_see: Callable[[str], bool],
    verdict: RowVerdict,
) -> tuple[dict[str, JobActionResult], list[Row]]:
    """The results of the ids refused before acting (not found, or not allowed), and the
    rows to act on, in the order of ``ids``. A job outside the caller's queues is "not
    found", like one that does not exist, so that its existence does not leak."""
    refused: dict[str, JobActionResult] = {}
    allowed: list[Row] = []
    for job_id in ids:
        row = rows.get(job_id)
        if row is None or not can_see(row["queue"]):
            refused[job_id] = JobActionResult(id=job_id, outcome=JobOutcome.NOT_FOUND)
            continue
        answer = verdict(row)
        if answer.allowed:
            allowed.append(row)
        else:
            refused[job_id] = skipped(row, answer.reason)
    return refused, allowed


async def act_on_jobs(
    call: ApiRequest[Any, Any], ids: Sequence[str], verdict: RowVerdict, act: RowsAct
) -> list[JobActionResult]:
    """Run a command on the jobs of ``ids``: one result per id, in order."""
    found = await call.app[PG].fetch(Q["jobs_for_action"], list(ids))
    results, allowed = triage(ids, {r["id"]: r for r in found}, call.principal.can_see, verdict)
    acted = await act(call, allowed)
    results.update(zip((r["id"] for r in allowed), acted, strict=True))
    return [results[job_id] for job_id in ids]


def one_by_one(act: RowAct) -> RowsAct:
    """An act on one row applied to each allowed row in turn."""

    async def act_on_each(call: ApiRequest[Any, Any], rows: list[Row]) -> list[JobActionResult]:
        return [await act(call, row) for row in rows]

    return act_on_each
