"""docker-compose.yml, `make run` and the nginx ingress describe the same stack."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from jobdeck.settings import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, dict[str, object]]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def python_modules(command: list[str]) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == "-m"]


def test_every_compose_command_is_a_module_that_exists() -> None:
    for name, service in compose().items():
        command = service.get("command")
        if not isinstance(command, list):
            continue
        for module in python_modules(command):
            assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"


def test_compose_runs_the_same_processes_as_make_run() -> None:
    run_sh = (ROOT / "deploy/local/run.sh").read_text()
    local = set(re.findall(r"-m (jobdeck_[a-z_.]+)", run_sh))
    in_compose = {
        m for s in compose().values() for m in python_modules(list(s.get("command") or []))
    }
    assert local == in_compose


def test_ingress_points_at_the_services_and_their_ports() -> None:
    services = compose()
    env = services["ingress"]["environment"]
    assert isinstance(env, dict)
    assert env["API_UPSTREAM"] == f"api:{DEFAULT_PORTS['api']}"
    assert env["GATEWAY_UPSTREAM"] == f"gateway:{DEFAULT_PORTS['gateway']}"
    assert env["EXPORTER_UPSTREAM"] == f"exporter:{DEFAULT_PORTS['exporter']}"
    assert env["DASHBOARD_UPSTREAM"] == f"dashboard:{DEFAULT_PORTS['dashboard']}"
    assert services["ingress"]["ports"] == ["3000:3000"]


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (make run installs it)"
)
def test_nginx_accepts_the_ingress_config(tmp_path: Path) -> None:
    site = (ROOT / "deploy/nginx/jobdeck.conf.template").read_text()
    site = site.replace("${API_UPSTREAM}", "127.0.0.1:8000")
    site = site.replace("${GATEWAY_UPSTREAM}", "127.0.0.1:8001")
    site = site.replace("${EXPORTER_UPSTREAM}", "127.0.0.1:8002")
    site = site.replace("${DASHBOARD_UPSTREAM}", "127.0.0.1:8005")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{ access_log off; include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
