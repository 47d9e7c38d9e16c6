"""Services as processes: a bad or unsafe setting stops them at start with one line; the
documented values (``JOBDECK_API_BULK_RATE_LIMIT=off``) work."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from jobdeck.settings import DEV_JWT_SECRET, Settings

from tests.support.api import auth
from tests.support.processes import ServiceProcess, free_port, settings_env, wait_for


def refusal(module: str, env: dict[str, str]) -> dict[str, object]:
    """Start ``module``; it must exit 2 at once with exactly one JSON line on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, timeout=60, check=False
    )
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2, done.stderr.decode()[-2000:]
    assert len(lines) == 1, lines
    line: dict[str, object] = json.loads(lines[0])
    return line


@pytest.mark.parametrize("module", ["jobdeck_api", "jobdeck_gateway", "jobdeck_exporter"])
@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "change-me-in-production", "short-secret"])
def test_a_public_or_short_secret_stops_a_service_outside_development(
    settings: Settings, module: str, secret: str
) -> None:
    env = settings_env(replace(settings, jwt_secret=secret), JOBDECK_ENV="production")
    line = refusal(module, env)
    assert line["level"] == "error"
    assert "JOBDECK_JWT_SECRET" in str(line["msg"]) and "JOBDECK_ENV=development" in str(
        line["msg"]
    )


def test_a_bad_value_stops_the_api_naming_the_variable(settings: Settings) -> None:
    line = refusal("jobdeck_api", settings_env(settings, JOBDECK_API_RATE_LIMIT="lots"))
    assert "JOBDECK_API_RATE_LIMIT='lots': accepts" in str(line["msg"])


@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("jobdeck_exporter", "JOBDECK_EXPORTER_LEASE_MS", "10"),
        ("jobdeck_exporter", "JOBDECK_EXPORTER_PUBLIC_URL", "localhost:3000"),
        ("jobdeck_exporter", "JOBDECK_EXPORTER_URL_SECRET", "short"),
        ("jobdeck_exporter", "JOBDECK_STORAGE_URL", "s3:///no-bucket"),
        ("jobdeck_exporter", "JOBDECK_EXPORT_MAX_ROWS", "lots"),
        ("jobdeck_api", "JOBDECK_EXPORT_MAX_ROWS", "lots"),
        ("jobdeck_api", "JOBDECK_API_EXPORT_WAIT_S", "soon"),
    ],
)
def test_a_bad_export_setting_stops_the_service_naming_it(
    settings: Settings, module: str, variable: str, value: str
) -> None:
    secret = replace(settings, jwt_secret="jobdeck-config-test-secret-0123456789abcdef")
    line = refusal(module, settings_env(secret, JOBDECK_ENV="production", **{variable: value}))
    assert str(line["msg"]).startswith(f"configuration error: {variable}"), line
    assert "accepts" in str(line["msg"]) and line["service"] == module.removeprefix("jobdeck_")


async def test_bulk_rate_limit_off_starts_and_serves(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> None:
    port = free_port()
    env = settings_env(
        replace(settings, jwt_secret="jobdeck-api-test-secret-0123456789abcdef"),
        JOBDECK_API_PORT=str(port),
        JOBDECK_API_BULK_RATE_LIMIT="off",
    )
    api = ServiceProcess("jobdeck_api", env, port, tmp_path).start()
    service_procs.append(api)
    await api.wait_ready(60)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            api.url + "/api/v1/jobs/bulk/retry", json={"jobIds": ["a"]}, headers=auth("operator")
        ) as resp,
    ):
        assert resp.status == 200


async def raw_exchange(port: int, head: bytes, then: bytes | None = None) -> bytes:
    """Send ``head``; with ``then``, wait for ``100 Continue``, send it and hang up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    if then is None:
        answer = await reader.read()
    else:
        answer = await reader.readline()  # the server is handling the request now
        writer.write(then)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_junk_and_vanishing_clients_get_problem_json_and_no_error_log(
    settings: Settings, service_procs: list[ServiceProcess], tmp_path: Path
) -> None:
    port = free_port()
    env = settings_env(
        replace(settings, jwt_secret="jobdeck-api-test-secret-0123456789abcdef"),
        JOBDECK_API_PORT=str(port),
    )
    api = ServiceProcess("jobdeck_api", env, port, tmp_path).start()
    service_procs.append(api)
    await api.wait_ready(60)
    junk = await raw_exchange(port, b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = junk.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and b"application/problem+json" in head
    assert json.loads(body)["status"] == 400 and b"Server: jobdeck" in head
    token = auth("operator")["Authorization"]
    continued = await raw_exchange(
        port,
        (
            f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            "Expect: 100-continue\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n"
        ).encode(),
        then=b'{"queue": "q", "data": "',
    )
    assert continued.startswith(b"HTTP/1.1 100")

    async def counted() -> bool:
        async with aiohttp.ClientSession() as session, session.get(api.url + "/metrics") as resp:
            text = await resp.text()
        return 'status="499"' in text

    await wait_for(counted, timeout=20, what="the vanished client to be counted as 499")
    log_lines = api.log_path.read_text().splitlines()
    assert all(line.startswith("{") for line in log_lines)
    assert not [json.loads(line) for line in log_lines if '"level": "error"' in line]
