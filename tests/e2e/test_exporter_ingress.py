"""The seed's "Export Jobs to Excel" snippet, verbatim, in node, through the nginx ingress:
`const { url } = await response.json()` gets a URL on the same origin that downloads the
workbook; api and exporter run as processes behind the real ingress config."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from jobdeck.settings import Settings

from tests.support.api import BASE, SECRET, job_row, seed, token
from tests.support.ingress import Ingress, nginx_binary
from tests.support.processes import ServiceProcess, free_port, settings_env

NODE_DIR = Path(__file__).resolve().parents[1] / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or nginx_binary() is None,
    reason="node or nginx missing (make install / make run install them)",
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
    ingress = Ingress(
        tmp_path / "nginx",
        ingress_port,
        {
            "API_UPSTREAM": f"127.0.0.1:{api.port}",
            "GATEWAY_UPSTREAM": f"127.0.0.1:{free_port()}",  # no gateway in this stack
            "DASHBOARD_UPSTREAM": f"127.0.0.1:{free_port()}",
            "EXPORTER_UPSTREAM": f"127.0.0.1:{exporter.port}",
        },
    ).start()
    try:
        await ingress.wait_ready()
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
        ingress.stop()
    assert result["url"].startswith(origin + "/exports/"), result
    assert result["status"] == 200 and result["bytes"] == out.stat().st_size > 0
    assert "spreadsheetml" in result["contentType"] and ".xlsx" in result["disposition"]
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["Summary", "Jobs", "Logs"]
    assert book["Jobs"].max_row == 1 + 25  # the completed ones only
