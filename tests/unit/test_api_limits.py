"""Cost limits without a database: the verdict on a priced search, settings from the env,
and the walk through a block of jobs lacking the sort value, from given statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jobdeck_api.limits import CostLimits
from jobdeck_api.search import plan_search
from jobdeck_api.search_estimates import Estimate, parse_plan
from jobdeck_api.search_guard import judge
from jobdeck_api.search_head import WalkHead, walk_order
from jobdeck_api.search_models import SearchQuery
from jobdeck_api.search_nulls import NullStats, leading_walk
from jobdeck_api.search_skew import Span, skewed_start

LIMITS = CostLimits(heavy_cost=1_000, refuse_cost=10_000)


def q(**params: object) -> SearchQuery:
    return SearchQuery.model_validate(params)


def test_cheap_costly_and_refused_searches() -> None:
    assert judge(q(), None, LIMITS).heavy is False  # the always-cheap shape, not priced
    assert judge(q(exactTotal=True), None, LIMITS).heavy is True  # a count is never cheap
    assert judge(q(sortBy="duration"), Estimate(20, 50.0), LIMITS).heavy is False
    assert judge(q(sortBy="duration"), Estimate(20, 5_000.0), LIMITS).heavy is True
    refused = judge(q(sortBy="attempts", search="report", page=3), Estimate(400_000, 2e5), LIMITS)
    assert refused.refusal is not None
    detail = refused.refusal.detail
    assert detail.startswith("sortBy: ") and "~400,000 matches" in detail
    for advice in (
        "sort by createdAt",
        "narrow it with queues",
        "longer, more specific",
        "nextCursor",
    ):
        assert advice in detail


def test_a_refused_search_sorted_by_creation_time_blames_its_filters() -> None:
    refused = judge(q(search="report"), Estimate(10, 50_000.0), LIMITS).refusal
    assert refused is not None and refused.detail.startswith("search: ")
    assert "sort by createdAt" not in refused.detail


def test_only_the_index_range_shape_skips_pricing() -> None:
    assert plan_search(q(queues=["a"], status=["failed"]), None).simple
    assert plan_search(q(offset=1_000), None).simple
    assert not plan_search(q(offset=1_001), None).simple
    assert not plan_search(q(queues=["a", "b"]), None).simple
    assert not plan_search(q(), frozenset({"a", "b"})).simple  # the token adds two queues
    assert not plan_search(q(sortBy="duration"), None).simple
    assert not plan_search(q(minPriority=5), None).simple


def test_limits_from_the_environment() -> None:
    limits = CostLimits.from_env(
        {"JOBDECK_API_STATEMENT_TIMEOUT_MS": "2500", "JOBDECK_API_REFUSE_COST": "5e4"}
    )
    assert (limits.statement_timeout_ms, limits.refuse_cost) == (2500, 50_000.0)
    assert limits.server_settings() == {"statement_timeout": "2500"}
    for bad in ({"JOBDECK_API_HEAVY_SLOTS": "0"}, {"JOBDECK_API_HEAVY_COST": "-1"}):
        with pytest.raises(ValueError, match="out of range"):
            CostLimits.from_env(bad)
    with pytest.raises(ValueError):
        CostLimits.from_env({"JOBDECK_API_STATEMENT_TIMEOUT_MS": "soon"})


# The joint statistics of jobs_status_nulls as ANALYZE read them on the 10M-row bench
# database: (status, started_at IS NULL, finished_at IS NULL, duration_ms IS NULL).
BENCH_MCV = (
    [
        ["completed", "f", "f", "f"],
        ["failed", "f", "f", "f"],
        ["waiting", "t", "t", "t"],
        ["active", "f", "t", "t"],
        ["delayed", "t", "t", "t"],
        ["cancelled", "t", "f", "t"],
        ["cancelled", "f", "f", "f"],
    ],
    [0.7034, 0.0999, 0.0776, 0.0400, 0.0290, 0.0253, 0.0248],
)
BENCH = NullStats.from_mcv(10_000_000, *BENCH_MCV)
# A page walking the sort index in order (an index scan under the LIMIT), and one that sorts.
WALKS = Estimate(20, 25.0, matches=1_000_000, walks=True)
SORTS = Estimate(20, 900.0, matches=300, walks=False)


def test_the_block_a_sort_walks_first_from_the_joint_statistics() -> None:
    failed = frozenset({"failed"})
    # No failed job lacks a start time: ascending, the page reads all ~1.3M that do.
    block = leading_walk(BENCH, "started_at", True, failed, 999_000, 20)
    assert block is not None and block.lacks
    assert block.walk == block.rows and 1_300_000 < block.rows < 1_400_000
    # Descending, failed jobs are spread through the jobs that started: 20 / 11.5 %.
    block = leading_walk(BENCH, "started_at", False, failed, 999_000, 20)
    assert block is not None and block.walk < 200
    # Waiting jobs all lack a start time: descending, every started job comes first.
    block = leading_walk(BENCH, "started_at", False, frozenset({"waiting"}), 776_000, 20)
    assert block is not None and not block.lacks and block.walk > 8_000_000
    # Cancelled jobs are half of them in the block of unstarted ones: found at once.
    block = leading_walk(BENCH, "started_at", True, frozenset({"cancelled"}), 500_000, 20)
    assert block is not None and block.walk < 200
    # Other filters thin the matches evenly: a queue of 1 % of the jobs, no status.
    block = leading_walk(BENCH, "finished_at", True, None, 100_000, 20)
    assert block is not None and 1_000 < block.walk < 3_000
    # Without statistics for the column (never analysed), nothing is claimed.
    assert leading_walk(NullStats(0, {}), "started_at", True, failed, 10, 20) is None


def test_a_page_walking_a_block_without_matches_is_refused_up_front() -> None:
    params = {"status": ["failed"], "sortBy": "startedAt", "sortOrder": "asc"}
    refused = judge(q(**params), WALKS, LIMITS, 0, BENCH).refusal
    assert refused is not None
    detail = refused.detail
    assert detail.startswith("sortBy: sorted by startedAt ascending, the ~1,3")
    assert "jobs without a startedAt come first" in detail
    for advice in ("sortOrder=desc", "dateField=startedAt", "sort by createdAt"):
        assert advice in detail
    two = {"queues": ["ml", "cleanup"], "status": ["failed", "cancelled"]}
    refused = judge(q(**two, sortBy="finishedAt", sortOrder="asc"), WALKS, LIMITS, 0, BENCH)
    assert refused.refusal is not None and "without a finishedAt" in refused.refusal.detail
    waiting = judge(q(status=["waiting"], sortBy="startedAt"), WALKS, LIMITS, 0, BENCH).refusal
    assert waiting is not None and "jobs with a startedAt come first" in waiting.detail
    assert "sortOrder=asc" in waiting.detail and "dateField" not in waiting.detail


def test_what_skips_the_block_or_finds_matches_in_it_is_served() -> None:
    asc = {"sortBy": "startedAt", "sortOrder": "asc"}
    served = [
        judge(q(status=["failed"], sortBy="startedAt"), WALKS, LIMITS, 0, BENCH),  # descending
        judge(q(status=["waiting"], **asc), WALKS, LIMITS, 0, BENCH),  # all in the block
        judge(q(status=["failed"], **asc), SORTS, LIMITS, 0, BENCH),  # few matches, sorted
        judge(q(status=["failed"], **asc), WALKS, LIMITS, 0, None),  # no statistics yet
        judge(q(status=["failed"], startDate="2026-01-01", dateField="startedAt", **asc), WALKS,
              LIMITS, 0, BENCH),  # a range on the sort column leaves the block out
        judge(q(status=["failed"], sortBy="createdAt", sortOrder="asc"), WALKS, LIMITS, 0, BENCH),
    ]  # fmt: skip
    assert [v.refusal for v in served] == [None] * len(served)


def test_a_page_plan_says_whether_it_walks_the_sort_index() -> None:
    def plan(child: str) -> list[dict[str, object]]:
        return [
            {
                "Plan": {
                    "Node Type": "Limit",
                    "Plan Rows": 20,
                    "Total Cost": 23.18,
                    "Plans": [{"Node Type": child, "Plan Rows": 999_345, "Total Cost": 1e6}],
                }
            }
        ]

    assert parse_plan(plan("Index Scan")) == Estimate(20, 23.18, 999_345, True)
    walk = plan("Index Scan")
    walk[0]["Plan"]["Plans"][0]["Index Name"] = "jobs_queue_created_idx"  # type: ignore[index]
    assert parse_plan(walk).walk_index == "jobs_queue_created_idx"
    assert parse_plan(plan("Sort")) == Estimate(20, 23.18, 999_345, False)
    count = [{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 7, "Total Cost": 1.5}}]
    assert parse_plan(count) == Estimate(7, 1.5)


# A queue created a week ago over 10M jobs of 90 days: 93 of 101 histogram bounds of the
# time column lie before its first job, none after its last.
NEW_QUEUE = Span(
    lo=datetime(2026, 10, 25, tzinfo=UTC).timestamp(),
    hi=datetime(2026, 11, 1, tzinfo=UTC).timestamp(),
    queues=("new",),
    ended_unstarted=False,
    rows=10_000_000,
    null_frac=0.14,
    bounds=101,
    below=93,
    above=0,
)


# A queue retired two months ago: 70 of 101 bounds lie after the last hour its jobs did
# anything in.
OLD_QUEUE = Span(
    lo=datetime(2026, 8, 3, tzinfo=UTC).timestamp(),
    hi=datetime(2026, 9, 1, tzinfo=UTC).timestamp(),
    queues=("old",),
    ended_unstarted=False,
    rows=10_000_000,
    null_frac=0.14,
    bounds=101,
    below=0,
    above=70,
)


def test_the_rows_outside_a_span_are_a_lower_bound_of_the_walk() -> None:
    start = skewed_start("finished_at", True, NEW_QUEUE)
    assert start is not None and start.edge == NEW_QUEUE.lo
    assert start.walk == pytest.approx(10_000_000 * 0.86 * 92 / 100)  # one bucket left out
    late = skewed_start("created_at", False, NEW_QUEUE)
    assert late is not None and late.walk == 0
    # The span's last hour bounds starts and finishes too: descending, any time column.
    for column in ("created_at", "started_at", "finished_at"):
        retired = skewed_start(column, False, OLD_QUEUE)
        assert retired is not None and retired.edge == OLD_QUEUE.hi
        assert retired.walk == pytest.approx(10_000_000 * 0.86 * 69 / 100)
    assert skewed_start("priority", True, NEW_QUEUE) is None
    assert skewed_start("finished_at", True, None) is None  # nothing matches, or no ANALYZE


def test_a_page_stuck_behind_other_queues_is_refused_up_front() -> None:
    asc = {"queues": ["new"], "sortBy": "finishedAt", "sortOrder": "asc"}
    refused = judge(q(**asc), WALKS, LIMITS, 0, None, NEW_QUEUE, complete=True).refusal
    assert refused is not None and refused.detail.startswith("sortBy: sorted by finishedAt")
    assert (
        "jobs of other queues with a finishedAt before 2026-10-25T00:00:00+00:00, when the"
        " first of the jobs searched was created, come first" in refused.detail
    )
    assert "startDate=2026-10-25T00:00:00+00:00 with dateField=finishedAt" in refused.detail
    # An index leading with the sort column, the queue checked further down it: still a walk.
    later = Estimate(20, 25.0, 1_000_000, True, "jobs_final_finished_idx")
    assert judge(q(**asc), later, LIMITS, 0, None, NEW_QUEUE, complete=True).refusal is not None
    served = [
        judge(q(**{**asc, "sortOrder": "desc"}), WALKS, LIMITS, 0, None, NEW_QUEUE),
        # Some job of the queue has no finishedAt: ascending, it comes first and may fill
        # the page before the walk reaches the other queues' jobs.
        judge(q(**asc), WALKS, LIMITS, 0, None, NEW_QUEUE),
        judge(q(**asc), SORTS, LIMITS, 0, None, NEW_QUEUE),  # sorts its few matches
        judge(
            q(**asc, startDate="2026-10-25", dateField="finishedAt"),
            WALKS,
            LIMITS,
            0,
            None,
            NEW_QUEUE,
        ),  # starts where the queue does
        judge(
            q(**asc),
            Estimate(20, 25.0, 1_000_000, True, "jobs_queue_status_created_idx"),
            LIMITS,
            0,
            None,
            NEW_QUEUE,
        ),  # walks the queue's own index
        judge(q(**asc), WALKS, LIMITS, 0, None, None),  # not probed
    ]
    assert [v.refusal for v in served] == [None] * len(served)


def test_a_page_stuck_behind_newer_jobs_of_other_names_is_refused_up_front() -> None:
    desc = {"search": "old-report", "sortBy": "startedAt"}
    refused = judge(q(**desc), WALKS, LIMITS, 0, None, OLD_QUEUE).refusal
    assert refused is not None and refused.detail.startswith("sortBy: sorted by startedAt desc")
    assert (
        "jobs of other queues or names with a startedAt after 2026-09-01T00:00:00+00:00, when"
        " the last of the jobs searched was done, come first" in refused.detail
    )
    assert "endDate=2026-09-01T00:00:00+00:00 with dateField=startedAt" in refused.detail
    served = [
        judge(q(**desc, sortOrder="asc"), WALKS, LIMITS, 0, None, OLD_QUEUE),  # starts there
        judge(q(**desc, endDate="2026-09-01", dateField="startedAt"), WALKS, LIMITS, 0, None,
              OLD_QUEUE),  # a range on the sort column starts where the jobs are
        judge(q(**desc, cursor=None), SORTS, LIMITS, 0, None, OLD_QUEUE),
    ]  # fmt: skip
    assert [v.refusal for v in served] == [None] * len(served)


def test_a_block_none_of_the_matches_lacks_is_walked_whole() -> None:
    stats = NullStats(rows=1_000, shares={("waiting", "finished_at", True): 0.4,
                                          ("completed", "finished_at", False): 0.6})  # fmt: skip
    even = leading_walk(stats, "finished_at", True, None, matches=100, need=20)
    assert even is not None and even.walk == pytest.approx(200)  # 1 match in 10 rows
    none = leading_walk(stats, "finished_at", True, None, matches=100, need=20, none_lack=True)
    assert none is not None and (none.rows, none.walk) == (400, 400)
    # Descending, the block walked first is the finished jobs': the flag does not apply.
    desc = leading_walk(stats, "finished_at", False, None, matches=100, need=20, none_lack=True)
    assert desc is not None and desc.walk == pytest.approx(200)


# A 10 ms task among jobs of every duration: 60 of 101 bounds of duration_ms lie above the
# power of two over its longest run, 1 below the one under its shortest.
FAST_TASK = Span(
    8, 16, ("q",), False, rows=10_000_000, null_frac=0.2, bounds=101, below=1, above=60
)


def test_a_page_stuck_behind_longer_jobs_is_refused_up_front() -> None:
    desc = {"search": "ping", "sortBy": "duration"}
    refused = judge(q(**desc), WALKS, LIMITS, 0, None, FAST_TASK).refusal
    assert refused is not None and refused.detail.startswith("sortBy: sorted by duration desc")
    assert "~4,720,000 jobs of other queues or names with a duration above 16 ms" in refused.detail
    assert "maxDuration=16, which starts where" in refused.detail
    served = [
        judge(q(**desc, maxDuration=16), WALKS, LIMITS, 0, None, FAST_TASK),
        judge(q(**desc, sortOrder="asc"), WALKS, LIMITS, 0, None, FAST_TASK),  # the shortest first
    ]
    assert [v.refusal for v in served] == [None] * len(served)


# Jobs created in the first week of October sorted by another time, over a history up to
# November: the range widened by the lag ends a minute after the week, and 27 of 101
# bounds of startedAt lie after that.
OCTOBER_WEEK = Span(
    lo=datetime(2026, 9, 30, 23, 59, tzinfo=UTC).timestamp(),
    hi=datetime(2026, 10, 8, 0, 1, tzinfo=UTC).timestamp(),
    queues=("q",),
    ended_unstarted=True,
    rows=10_000_000,
    null_frac=0.14,
    bounds=101,
    below=65,
    above=27,
    dated_lo=True,
    dated_hi=True,
)


def test_a_page_stuck_behind_jobs_outside_a_range_of_another_time_is_refused_up_front() -> None:
    week = {"startDate": "2026-10-01", "endDate": "2026-10-07", "sortBy": "startedAt"}
    refused = judge(q(**week), WALKS, LIMITS, 0, None, OCTOBER_WEEK).refusal
    assert refused is not None and refused.detail.startswith("sortBy: sorted by startedAt desc")
    assert (
        "the ~2,236,000 jobs with a startedAt after 2026-10-08T00:01:00+00:00 come first, and"
        " none of them has a createdAt within startDate/endDate" in refused.detail
    )
    assert "instead sortBy=createdAt, the time the range is on" in refused.detail
    asc = {**week, "sortOrder": "asc"}
    assert judge(q(**asc), WALKS, LIMITS, 0, None, OCTOBER_WEEK, complete=True).refusal is not None
    served = [
        # Jobs of the week without a start come first ascending and may fill the page.
        judge(q(**asc), WALKS, LIMITS, 0, None, OCTOBER_WEEK),
        # The range on the sort column itself: the walk starts at the week.
        judge(q(**week, dateField="startedAt"), WALKS, LIMITS, 0, None, OCTOBER_WEEK),
        judge(q(**week), SORTS, LIMITS, 0, None, OCTOBER_WEEK),  # sorts its matches
    ]
    assert [v.refusal for v in served] == [None] * len(served)


def test_what_the_head_of_the_walk_holds_decides_a_page_the_estimates_would_serve() -> None:
    week = {"startDate": "2026-10-01", "endDate": "2026-10-07", "sortBy": "finishedAt"}
    asc = q(**week, sortOrder="asc")
    deep = judge(asc, WALKS, LIMITS, 0, None, None, head=WalkHead(found_at=None)).refusal
    assert deep is not None and deep.detail.startswith(
        "sortBy: sorted by finishedAt ascending, the jobs without a finishedAt come first, and"
        " fewer than a page of the first 20,000 jobs in that order match"
    )
    burst = judge(q(status=["failed"], sortBy="startedAt"), WALKS, LIMITS, head=WalkHead(None))
    assert burst.refusal is not None and burst.refusal.detail.startswith(
        "sortBy: sorted by startedAt descending, fewer than a page of the first 20,000"
    )
    slow = judge(asc, WALKS, LIMITS, 0, None, None, head=WalkHead(None, timed_out=True))
    assert slow.refusal is not None and "among the jobs read in 50 ms" in slow.refusal.detail
    # Found in the head, or the table ends there: served, whatever the spans bound.
    for head in (WalkHead(found_at=300), WalkHead(None, ended=True)):
        assert judge(asc, WALKS, LIMITS, 0, None, OCTOBER_WEEK, head=head).refusal is None


def test_the_head_is_read_in_the_order_the_page_walks_its_index() -> None:
    by_started = plan_search(q(sortBy="startedAt", sortOrder="asc"), None).sort
    assert walk_order(by_started, "jobs_started_idx") == (
        " ORDER BY started_at ASC NULLS FIRST, id ASC"
    )
    assert walk_order(by_started, "jobs_status_created_idx") is None  # a range of status
    two_keys = plan_search(q(sortBy="startedAt,createdAt"), None).sort
    assert walk_order(two_keys, "jobs_started_idx") is None
    # One queue sorted by queue: the queue is fixed, the page walks the ids.
    by_queue = plan_search(q(queues=["a"], sortBy="queue"), None).sort
    assert walk_order(by_queue, "jobs_pkey") == " ORDER BY id DESC"
