"""Cost limits without a database: the verdict on a priced search, settings from the env."""

from __future__ import annotations

import pytest
from jobdeck_api.limits import CostLimits
from jobdeck_api.search import plan_search
from jobdeck_api.search_count import Estimate
from jobdeck_api.search_guard import judge
from jobdeck_api.search_models import SearchQuery

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
