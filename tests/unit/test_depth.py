"""The one definition of a queue's depth: parsing the worker registry, summing what it says."""

from __future__ import annotations

import json

from jobdeck.depth import live_active, parse_worker, per_queue, workers_per_queue


def test_live_active_sums_what_live_workers_report_per_queue() -> None:
    reported = per_queue(
        {"per_queue": {"a": {"active": 2}, "b": {"active": True}, "c": "junk", "d": {}}}, "active"
    )
    assert reported == {"a": 2}  # a bool or a missing count is no count
    assert per_queue({"active": 3}, "active") == {}  # a worker without per_queue says nothing
    workers = [
        parse_worker("w1", json.dumps({"queues": ["a"], "per_queue": {"a": {"active": 2}}})),
        parse_worker(
            "w2",
            json.dumps(
                {"queues": ["a", "b"], "per_queue": {"a": {"active": 1}, "b": {"active": 0}}}
            ),
        ),
        parse_worker("w3", json.dumps({"queues": ["c"]})),
    ]
    assert live_active(workers) == {"a": 3, "b": 0}
    assert workers_per_queue(workers) == {"a": 2, "b": 1, "c": 1}


def test_an_unreadable_registry_entry_is_a_worker_serving_nothing() -> None:
    for raw in (b"not json", b"[1, 2]", None, json.dumps({"concurrency": "many"})):
        w = parse_worker("w", raw)
        assert (w.queues, w.concurrency, w.active, w.queue_active) == ([], 0, 0, {})
    named = parse_worker("w", json.dumps({"queues": [{"name": "q"}, 7], "concurrency": 4}))
    assert named.queues == ["q"] and named.concurrency == 4
