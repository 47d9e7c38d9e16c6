"""The nginx ingress in front of a real API process: its limits agree with the API's, its
own errors are problem JSON, and no Server header names a version."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from jobdeck.settings import Settings

from tests.support.api import SECRET, auth
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


@pytest.fixture
def ingress_port(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """nginx on a free port with the deploy config; yields (ingress port, api port)."""
    port, api_port = free_port(), free_port()
    site = (ROOT / "deploy/nginx/jobdeck.conf.template").read_text()
    site = site.replace("${API_UPSTREAM}", f"127.0.0.1:{api_port}")
    site = site.replace("${GATEWAY_UPSTREAM}", f"127.0.0.1:{free_port()}")  # nothing there
    for name in ("${EXPORTER_UPSTREAM}", "${DASHBOARD_UPSTREAM}"):
        site = site.replace(name, f"127.0.0.1:{free_port()}")
    site = site.replace("listen 3000;", f"listen 127.0.0.1:{port};")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}; "
        f"proxy_temp_path {tmp_path}; include {tmp_path}/site.conf; }}\n"
    )
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")])
    yield port, api_port
    proc.terminate()
    proc.wait(10)


async def test_ingress_and_api_limits_agree_and_errors_are_problem_json(
    settings: Settings,
    service_procs: list[ServiceProcess],
    tmp_path: Path,
    ingress_port: tuple[int, int],
) -> None:
    port, api_port = ingress_port
    env = settings_env(replace(settings, jwt_secret=SECRET), JOBDECK_API_PORT=str(api_port))
    api = ServiceProcess("jobdeck_api", env, api_port, tmp_path).start()
    service_procs.append(api)
    await api.wait_ready(60)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:

        async def up() -> bool:
            try:
                async with session.get(base + "/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(up, timeout=20, what="nginx to listen")

        async def problem(resp: aiohttp.ClientResponse, status: int) -> None:
            assert resp.status == status, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/problem+json")
            assert (await resp.json())["status"] == status
            assert resp.headers.get("Server") in ("nginx", "jobdeck")

        long_queues = ",".join(f"queue-{i:03d}-" + "x" * 90 for i in range(100))
        async with session.get(
            base + "/api/v1/jobs/search", params={"queues": long_queues}, headers=auth()
        ) as resp:
            assert resp.status == 200, await resp.text()  # the API takes it: so does nginx
            assert resp.headers["Server"] == "nginx"
        async with session.get(
            base + "/api/v1/jobs/search?search=" + "x" * 70_000, headers=auth()
        ) as resp:
            await problem(resp, 414)
        async with session.post(
            base + "/api/v1/jobs",
            data=io.BytesIO(b"x" * (2 * 1024 * 1024)),
            headers=auth("operator"),
        ) as resp:
            await problem(resp, 413)
        async with session.get(base + "/api/v1/jobs/nope", headers=auth()) as resp:
            await problem(resp, 404)
        async with session.get(base + "/socket.io/?EIO=4&transport=polling") as resp:
            await problem(resp, 503)  # the gateway is down
