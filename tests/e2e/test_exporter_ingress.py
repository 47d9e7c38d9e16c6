"""The seed's "Export Jobs to Excel" snippet, verbatim, in node, through the nginx ingress:
`const { url } = await response.json()` gets a URL on the same origin that downloads the
workbook; api and exporter run as processes behind the real ingress config."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from jobdeck.settings import Settings

from tests.support.api import BASE, SECRET, job_row, seed, token
from tests.support.processes import ServiceProcess, free_port, settings_env

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("nginx") is None,
    reason="node or nginx missing (make install / make run install them)",
)


def start_ingress(tmp: Path, port: int, api: int, exporter: int) -> subprocess.Popen[bytes]:
    """nginx with the ingress config of compose and `make run`, on ``port``."""
    site = (ROOT / "deploy/nginx/jobdeck.conf.template").read_text()
    site = site.replace("${API_UPSTREAM}", f"127.0.0.1:{api}")
    site = site.replace("${GATEWAY_UPSTREAM}", f"127.0.0.1:{free_port()}")
    site = site.replace("${EXPORTER_UPSTREAM}", f"127.0.0.1:{exporter}")
    site = site.replace("listen 3000;", f"listen 127.0.0.1:{port};")
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log;\nevents {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};"
        f" include {tmp}/site.conf; }}\n"
    )
    return subprocess.Popen(
        ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"]
    )


async def test_seed_export_snippet_through_the_ingress(
    export_settings: Settings, pg: Any, service_procs: list[ServiceProcess], tmp_path: Path
) -> None:
    jobs = [job_row(status="completed", created_at=BASE + timedelta(minutes=i)) for i in range(25)]
    await seed(pg, [*jobs, job_row(status="failed")])
    ingress_port = free_port()
    origin = f"http://127.0.0.1:{ingress_port}"
    env = settings_env(
        export_settings,
        JOBDECK_JWT_SECRET=SECRET,
        JOBDECK_LOG_LEVEL="WARNING",
        JOBDECK_EXPORTER_PUBLIC_URL=origin,
    )
    api = ServiceProcess("jobdeck_api", {**env, "JOBDECK_API_PORT": str(p := free_port())}, p,
                         tmp_path).start()  # fmt: skip
    exporter = ServiceProcess(
        "jobdeck_exporter", {**env, "JOBDECK_EXPORTER_PORT": str(q := free_port())}, q, tmp_path
    ).start()
    service_procs.extend([api, exporter])
    await asyncio.gather(api.wait_ready(), exporter.wait_ready())
    nginx = start_ingress(tmp_path, ingress_port, api.port, exporter.port)
    try:
        out = tmp_path / "export.xlsx"
        node = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "seed-export.mjs"), cwd=NODE_DIR,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "JOBDECK_ORIGIN": origin,
                 "JOBDECK_TOKEN": token("viewer"), "JOBDECK_OUT": str(out)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        stdout, _ = await asyncio.wait_for(node.communicate(), timeout=60)
        assert node.returncode == 0, stdout.decode() + api.log_tail() + exporter.log_tail()
        result = json.loads(stdout.decode().strip().splitlines()[-1])
    finally:
        nginx.terminate()
        nginx.wait(10)
    assert result["url"].startswith(origin + "/exports/"), result
    assert result["status"] == 200 and result["bytes"] == out.stat().st_size > 0
    assert "spreadsheetml" in result["contentType"] and ".xlsx" in result["disposition"]
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["Summary", "Jobs", "Logs"]
    assert book["Jobs"].max_row == 1 + 25  # the completed ones only
