"""The served OpenAPI 3.1 document, the offline Swagger UI, and a schemathesis fuzz run
against the real service process: no 5xx, every response matches its documented schema.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jobdeck.settings import Settings

from tests.support.api import SECRET, job_row, seed, token
from tests.support.processes import ServiceProcess, free_port, settings_env

# CI runs a short fuzz; `make fuzz` a long one (JOBDECK_FUZZ_EXAMPLES per operation, and
# JOBDECK_FUZZ_MIN_CASES the test cases it must reach in all).
FUZZ_EXAMPLES = int(os.environ.get("JOBDECK_FUZZ_EXAMPLES", "25"))
FUZZ_MIN_CASES = int(os.environ.get("JOBDECK_FUZZ_MIN_CASES", "0"))
FUZZ_TIMEOUT_S = max(300, FUZZ_EXAMPLES * 6)  # generous: the suite runs tests in parallel
FUZZ_CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance,response_headers_conformance"
)


async def start_api(settings: Settings, procs: list[ServiceProcess], tmp: Path) -> ServiceProcess:
    port = free_port()
    env = settings_env(
        settings,
        JOBDECK_JWT_SECRET=SECRET,
        JOBDECK_API_PORT=str(port),
        JOBDECK_API_RATE_LIMIT="off",
        JOBDECK_API_EXPORT_WAIT_S="0",  # no exporter runs here: answer 202 at once
        JOBDECK_LOG_LEVEL="WARNING",
    )
    proc = ServiceProcess("jobdeck_api", env, port, tmp).start()
    procs.append(proc)
    await proc.wait_ready()
    return proc


async def test_openapi_document_and_offline_swagger_ui(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> None:
    api = await start_api(settings, service_procs, tmp_path)
    async with aiohttp.ClientSession() as http:
        async with http.get(api.url + "/api/docs/openapi.json") as resp:
            doc: dict[str, Any] = await resp.json()
        assert doc["openapi"] == "3.1.0"
        search = doc["paths"]["/api/v1/jobs/search"]["get"]
        names = {p["name"] for p in search["parameters"]}
        assert {"search", "status", "queues", "startDate", "sortBy", "cursor"} <= names
        enqueue = doc["paths"]["/api/v1/jobs"]["post"]
        assert enqueue["requestBody"]["content"]["application/json"]["example"]
        assert "422" in enqueue["responses"] and "401" in enqueue["responses"]
        assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

        async with http.get(api.url + "/api/docs/asyncapi.json") as resp:
            asyncapi: dict[str, Any] = await resp.json()
        assert resp.status == 200 and asyncapi["asyncapi"] == "3.0.0"
        assert asyncapi["channels"]["jobs"]["address"] == "/jobs"

        async with http.get(api.url + "/api/docs") as resp:
            html = await resp.text()
        assert resp.status == 200 and "swagger-ui-bundle.js" in html
        assert "http" not in re.sub(r"<!DOCTYPE html>", "", html).split("<body>")[0]
        for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert asset.startswith("/api/docs/"), asset  # served by us: works offline
            async with http.get(api.url + asset) as resp:
                assert resp.status == 200, asset
                assert len(await resp.read()) > 0


@pytest.mark.timeout(FUZZ_TIMEOUT_S + 60)
async def test_schemathesis_fuzz(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path, pg: Any
) -> None:
    await seed(
        pg,
        [job_row(status=s, queue="fuzz") for s in ("failed", "completed", "waiting", "active")],
    )
    api = await start_api(settings, service_procs, tmp_path)
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        api.url + "/api/docs/openapi.json",
        "--header",
        f"Authorization: Bearer {token('admin')}",
        "--checks",
        FUZZ_CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--seed",
        "20261129",
        # One worker: CPython 3.11's ast.parse is not thread-safe, and hypothesis calls it
        # to describe strategies ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--no-color",
    ]
    proc = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S
    )
    out = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, out + "\n--- api log ---\n" + api.log_tail()
    cases = fuzz_cases(proc.stdout)
    assert cases >= FUZZ_MIN_CASES, f"{cases} test cases, fewer than {FUZZ_MIN_CASES}:\n{out}"
    print(f"schemathesis: {cases} test cases, 0 failures")


def fuzz_cases(stdout: str) -> int:
    """The test cases schemathesis ran (its summary line: "Test cases: N generated, ...")."""
    found = re.search(r"Test cases:\s*([\d,]+) generated", stdout)
    return int(found.group(1).replace(",", "")) if found else 0
