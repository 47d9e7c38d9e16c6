"""What the gateway forgets after a flood of sessions (``engine.shrink``,
``SessionGuard.compact``, ``TokenBucket.full``)."""

from __future__ import annotations

import sys
from collections import OrderedDict

from jobdeck_gateway.config import GatewayConfig
from jobdeck_gateway.engine import shrink
from jobdeck_gateway.guard import SessionGuard
from jobdeck_gateway.limits import TokenBucket


def test_shrink_gives_back_a_table_emptied_by_deletions() -> None:
    table = {f"sid-{i}": i for i in range(20_000)}
    for i in range(19_990):
        del table[f"sid-{i}"]
    emptied = sys.getsizeof(table)
    shrink(table)
    assert table == {f"sid-{i}": i for i in range(19_990, 20_000)}
    assert sys.getsizeof(table) < emptied / 100


def test_shrink_keeps_order() -> None:
    table = OrderedDict((k, k) for k in "zyxw")
    del table["y"]
    shrink(table)
    assert list(table) == ["z", "x", "w"]


def test_a_bucket_is_full_once_refilled_to_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=5)
    assert bucket.full(bucket.at)
    assert bucket.take(bucket.at)
    assert not bucket.full(bucket.at)
    assert not bucket.full(bucket.at + 0.05)  # half a token back
    assert bucket.full(bucket.at + 0.2)


def test_guard_compaction_forgets_idle_addresses_only() -> None:
    guard = SessionGuard(GatewayConfig(handshakes_per_s=1.0, handshake_burst=3))
    assert guard.admit("198.51.100.1") is None  # spent one token: not full
    for i in range(1000):
        guard._buckets[f"203.0.113.{i}"] = TokenBucket(1.0, 3)  # untouched: full
    guard.compact()
    assert list(guard._buckets) == ["198.51.100.1"]
    assert guard.admit("198.51.100.1") is None
    assert guard.admit("198.51.100.1") is None
    assert guard.admit("198.51.100.1") is not None  # its spent tokens were remembered
