"""Who sees a queue-owned row (a template, a schedule): ``scoped_rows.visible``."""

from __future__ import annotations

from jobdeck.auth import Principal, Role
from jobdeck_api.scoped_rows import visible

ALL = Principal("admin", Role.ADMIN, None)
EMAILS = Principal("alice", Role.ADMIN, frozenset({"emails"}))


def test_a_row_of_a_queue_is_seen_by_tokens_of_that_queue() -> None:
    assert visible(ALL, "emails") and visible(EMAILS, "emails")
    assert visible(ALL, "reports") and not visible(EMAILS, "reports")


def test_a_row_without_a_queue_is_seen_by_all_queue_tokens_only() -> None:
    # a schedule whose template was deleted with force
    assert visible(ALL, None)
    assert not visible(EMAILS, None)
