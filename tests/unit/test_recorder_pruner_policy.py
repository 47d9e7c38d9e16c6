"""The pruner's pure decisions: how long to rest after a batch, which log months may go."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from jobdeck_recorder.config import RecorderConfig
from jobdeck_recorder.pruner import longest_log_retention, rest_after

CONFIG = RecorderConfig(retention_pause_ms=20, retention_duty_pct=20, retention_logs_days=30)


def test_the_rest_grows_with_the_batch_time_so_the_pruner_keeps_to_its_duty() -> None:
    assert rest_after(0.001, CONFIG) == 0.02  # a quick batch: the floor
    assert abs(rest_after(0.1, CONFIG) - 0.4) < 1e-9  # 20 %: work 0.1 s, rest 0.4 s
    assert rest_after(0.1, replace(CONFIG, retention_duty_pct=100, retention_pause_ms=0)) == 0


def test_the_longest_log_retention_of_any_queue_bounds_what_months_go() -> None:
    configs = {"long": {"keep_logs_days": 60}, "short": {"keep_logs_days": 1}}
    assert longest_log_retention(["a", "long"], configs, CONFIG) == timedelta(days=60)
    assert longest_log_retention(["a"], {}, CONFIG) == timedelta(days=30)  # the default
    forever = {**configs, "audit": {"keep_logs_days": 0}}
    assert longest_log_retention(["a"], forever, CONFIG) is None
    assert longest_log_retention([], {}, replace(CONFIG, retention_logs_days=0)) is None
