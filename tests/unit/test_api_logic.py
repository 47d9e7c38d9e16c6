"""Pure logic of the api service: SQL building, cursors, decisions, parameter parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jobdeck.events import JobStatus, current_attempt
from jobdeck.jobsql import like_pattern, sort_spec
from jobdeck_api.decisions import (
    LIBRARY_DEFAULTS,
    may_cancel,
    may_retry,
    spec_for_enqueue,
    spec_for_retry,
)
from jobdeck_api.errors import BadParameter
from jobdeck_api.job_command_models import EnqueueRequest
from jobdeck_api.search import decode_cursor, encode_cursor, plan_search
from jobdeck_api.search_models import SearchQuery
from jobdeck_api.security import bearer_token, limits_uri, retry_after
from pydantic import ValidationError


def q(**kw: object) -> SearchQuery:
    return SearchQuery.model_validate(kw)


def test_sql_has_only_bound_values() -> None:
    plan = plan_search(
        q(search="x'; DROP TABLE jobs;--", queues=["a"], status=["failed"], sortBy="name"),
        None,
    )
    assert "DROP" not in plan.sql and "DROP" not in plan.count_sql
    assert "%x'; DROP TABLE jobs;--%" in plan.args
    assert "ORDER BY name DESC, id DESC" in plan.sql


def test_queue_scope_intersects_requested_queues() -> None:
    plan = plan_search(q(queues=["a", "b"]), frozenset({"b", "c"}))
    assert "queue = $1" in plan.sql and plan.args[0] == "b"
    assert plan_search(q(queues=["a"]), frozenset({"c"})).empty
    assert ["c", "d"] in plan_search(q(), frozenset({"c", "d"})).args


def test_one_queue_and_one_status_are_equalities_that_an_index_returns_in_order() -> None:
    """``= ANY(array)`` on an index's first column gives up its order (Postgres < 17)."""
    one = plan_search(q(queues=["a"], status=["failed"], sortOrder="asc"), None)
    assert "queue = $1 AND status = $2" in one.sql
    two = plan_search(q(queues=["a", "b"], status=["failed", "waiting"]), None)
    assert "queue = ANY($1::text[]) AND status = ANY($2::text[])" in two.sql


def test_a_range_of_another_time_bounds_the_creation_time_of_a_page_sorted_by_it() -> None:
    week = {"startDate": "2026-10-01", "endDate": "2026-10-07", "dateField": "startedAt"}
    plan = plan_search(q(**week, queues=["a"]), None)
    page_where, count_where = plan.sql.split(" ORDER BY ")[0], plan.count_sql
    # The page's walk starts within the range widened by the queues' lag, read in its
    # own snapshot; the total's estimate is left as the planner can price it.
    assert "created_at >= coalesce($5::timestamptz - (SELECT CASE" in page_where
    assert "created_at < coalesce($6::timestamptz + (SELECT CASE" in page_where
    assert "FROM job_spans WHERE queue = ANY($4::text[]))" in page_where
    assert "job_spans" not in count_where and "job_spans" not in plan.estimate_sql
    for other in (
        {**week, "dateField": "createdAt"},  # the range is on the sort column itself
        {**week, "sortBy": "startedAt"},  # sorted by another time
        {"sortBy": "createdAt"},  # no range
    ):
        assert "job_spans" not in plan_search(q(**other), None).sql, other


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_cursor_round_trip_and_tamper() -> None:
    query = q(sortBy="duration,createdAt", sortOrder="desc,asc")
    sort = sort_spec(query)
    ts = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    cursor = encode_cursor(sort, {"duration_ms": None, "created_at": ts, "id": "j1"})
    assert decode_cursor(cursor, sort) == ([None, ts], "j1")
    with pytest.raises(BadParameter):
        decode_cursor(cursor, sort_spec(q(sortBy="duration")))
    with pytest.raises(BadParameter):
        decode_cursor(cursor[:-3], sort)
    with pytest.raises(BadParameter):
        decode_cursor("e30", sort)  # "{}"


def test_keyset_predicate_for_uniform_non_null_sort_is_a_row_comparison() -> None:
    sort = sort_spec(q())
    cursor = encode_cursor(sort, {"created_at": datetime(2024, 1, 1, tzinfo=UTC), "id": "j"})
    plan = plan_search(q(cursor=cursor), None)
    assert "((created_at, id) < ($1, $2))" in plan.sql


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sortBy": "color"}, "sortBy"),
        ({"sortBy": "name,name"}, "twice"),
        ({"sortBy": "name,queue", "sortOrder": "asc,desc,asc"}, "sortOrder"),
        ({"page": 1, "offset": 0}, "page and offset"),
        ({"cursor": "abc", "page": 2}, "cursor"),
        ({"startDate": "yesterday"}, "ISO 8601"),
        ({"startDate": "2024-02-01", "endDate": "2024-01-01"}, "startDate"),
        ({"limit": 100000}, "limit"),
    ],
)
def test_search_query_rejects(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        q(**kw)


def test_dates_naive_is_utc_and_date_end_covers_the_day() -> None:
    query = q(startDate="2024-01-01", endDate="2024-01-31")
    assert query.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert query.end_date == datetime(2024, 2, 1, tzinfo=UTC)
    assert q(dateField="finished").date_field.value == "finishedAt"


def test_retry_and_cancel_decisions() -> None:
    assert may_retry("failed").allowed and may_retry("cancelled").allowed
    assert not may_retry("failed", added_attempt=0).allowed  # row still a placeholder
    assert not may_retry("completed").allowed and "completed" in (
        may_retry("completed").reason or ""
    )
    for status in ("waiting", "delayed", "active"):
        assert may_cancel(status).allowed
    for status in ("completed", "failed", "cancelled"):
        assert not may_cancel(status).allowed
    assert current_attempt(attempts=3, version=4 * 16) == 4
    assert current_attempt(attempts=0, version=0) == 1


def test_retry_spec_comes_from_the_row() -> None:
    row = {
        "id": "j", "queue": "q", "name": "n", "data": {"a": 1}, "priority": 7,
        "options": {"backoff_ms": 5, "timeout_s": 9}, "attempts": 3, "max_attempts": 3,
        "template_id": None, "schedule_id": "s", "version": 3 * 16 + 3,
    }  # fmt: skip
    spec = spec_for_retry(row)
    assert (spec.job_id, spec.attempt_offset, spec.backoff_ms, spec.timeout_s) == ("j", 3, 5, 9.0)
    assert spec.added_event(0).attempt == 4 and spec.schedule_id == "s"
    assert spec.max_attempts == 4  # one more run after the 3rd of 3 failed
    assert spec_for_retry({**row, "attempts": 1, "version": 19}).max_attempts == 3  # budget kept


def test_retry_of_a_job_cancelled_before_it_ran_is_newer_than_the_cancel() -> None:
    row = {
        "id": "j", "queue": "q", "name": "n", "data": None, "priority": 0, "options": {},
        "attempts": 0, "max_attempts": 3, "template_id": None, "schedule_id": None,
        "version": 1 * 16 + 3,  # the cancel, recorded as attempt 1
    }  # fmt: skip
    added = spec_for_retry(row).added_event(0)
    assert added.attempt == 2 and added.version > row["version"]


def test_enqueue_precedence_explicit_template_config_library() -> None:
    req = EnqueueRequest.model_validate({"templateId": "t", "maxAttempts": 9})
    template = {"id": "t", "queue": "q", "task": "n", "data": {"d": 1}, "priority": 3,
                "max_attempts": 2, "backoff_ms": 10, "timeout_s": None}  # fmt: skip
    config = {"max_attempts": 5, "backoff_ms": 20, "timeout_s": 30.0}
    spec = spec_for_enqueue(req, 1000, template, config)
    assert (spec.queue, spec.name, spec.data, spec.priority) == ("q", "n", {"d": 1}, 3)
    assert (spec.max_attempts, spec.backoff_ms, spec.timeout_s) == (9, 10, 30.0)
    plain = spec_for_enqueue(
        EnqueueRequest.model_validate({"queue": "q", "name": "n", "delayMs": 500}), 1000, None, None
    )
    assert plain.max_attempts == LIBRARY_DEFAULTS["max_attempts"] and plain.run_at_ms == 1500
    assert plain.added_event(1000).fields["status"] == JobStatus.DELAYED


def test_enqueue_request_needs_a_target() -> None:
    with pytest.raises(ValidationError, match="queue and name"):
        EnqueueRequest.model_validate({"name": "n"})
    with pytest.raises(ValidationError, match="delayMs and runAt"):
        EnqueueRequest.model_validate(
            {"queue": "q", "name": "n", "delayMs": 1, "runAt": "2030-01-01"}
        )


def test_security_helpers() -> None:
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token(None) is None
    assert limits_uri("redis://h:1/2") == "async+redis://h:1/2"
    assert retry_after(10.2, 10.0) == 1 and retry_after(15.0, 10.0) == 5
