"""The per-job loop shared by the job commands: which ids are not found, which are refused
by the command's verdict, and which rows it acts on (``job_batch.triage``)."""

from __future__ import annotations

from jobdeck.events import JobStatus
from jobdeck_api.decisions import Verdict, may_cancel
from jobdeck_api.job_batch import Row, triage
from jobdeck_api.job_command_models import JobActionResult, JobOutcome


def row(job_id: str, status: str, queue: str = "emails") -> Row:
    return {"id": job_id, "queue": queue, "status": status}


def cancel_verdict(r: Row) -> Verdict:
    return may_cancel(r["status"])


def test_triage_sorts_ids_into_not_found_skipped_and_allowed() -> None:
    rows = {
        r["id"]: r
        for r in [
            row("w", "waiting"),
            row("done", "completed"),
            row("hidden", "waiting", queue="reports"),
            row("a", "active"),
        ]
    }
    ids = ["a", "missing", "done", "hidden", "w"]
    refused, allowed = triage(ids, rows, lambda q: q == "emails", cancel_verdict)
    assert [r["id"] for r in allowed] == ["a", "w"]  # in the order of the ids
    assert refused == {
        "missing": JobActionResult(id="missing", outcome=JobOutcome.NOT_FOUND),
        # another queue's job is "not found" too: its existence does not leak
        "hidden": JobActionResult(id="hidden", outcome=JobOutcome.NOT_FOUND),
        "done": JobActionResult(
            id="done",
            outcome=JobOutcome.SKIPPED,
            reason=may_cancel("completed").reason,
            previous_status=JobStatus.COMPLETED,
        ),
    }


def test_triage_of_no_ids_acts_on_nothing() -> None:
    assert triage([], {}, lambda q: True, cancel_verdict) == ({}, [])
