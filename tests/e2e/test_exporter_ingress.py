"""The seed's "Export Jobs to Excel" snippet, verbatim, in node, through the nginx ingress:
`const { url } = await response.json()` gets a URL on the same origin that downloads the
workbook; api and exporter run as processes behind the real ingress config."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from jobdeck.settings import Settings

from tests.support.api import BASE, SECRET, job_row, seed, token
from tests.support.ingress import ingress_in_front, nginx_binary
from tests.support.node import node_missing, run_page_script
from tests.support.processes import ServiceProcess, free_port, settings_env

pytestmark = pytest.mark.skipif(
    node_missing() or nginx_binary() is None,
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
    await asyncio.gather(api.wait_ready(60), exporter.wait_ready(60))  # a busy machine
    async with ingress_in_front(
        tmp_path / "nginx", ingress_port, api=api.port, exporter=exporter.port
    ):
        out = tmp_path / "export.xlsx"
        result = await run_page_script(
            "seed-export.mjs", origin, token("viewer"), [api, exporter], JOBDECK_OUT=str(out)
        )
    assert result["url"].startswith(origin + "/exports/"), result
    assert result["status"] == 200 and result["bytes"] == out.stat().st_size > 0
    assert "spreadsheetml" in result["contentType"] and ".xlsx" in result["disposition"]
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["Summary", "Jobs", "Logs"]
    assert book["Jobs"].max_row == 1 + 25  # the completed ones only
