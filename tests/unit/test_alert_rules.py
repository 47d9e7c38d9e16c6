"""The Prometheus alert rules in deploy/: valid, and each firing on the series it is for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"


def promtool() -> str:
    """promtool from PATH, or as `make test` unpacks it (deploy/local/ensure-promtool.sh)."""
    found = shutil.which("promtool") or str(ROOT / ".tools" / "bin" / "promtool")
    if not Path(found).is_file():
        pytest.skip("promtool is not installed (deploy/local/ensure-promtool.sh installs it)")
    return found


def test_rules_are_valid_and_fire_on_their_test_series() -> None:
    tool = promtool()
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(
            [tool, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_is_exercised_by_a_test_and_prometheus_loads_the_file() -> None:
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((RULES / "alerts.test.yml").read_text())
    tested = {a["alertname"] for t in tests["tests"] for a in t["alert_rule_test"]}
    assert tested == names
    assert "alerts.yml" in yaml.safe_load((RULES / "prometheus.yml").read_text())["rule_files"]
