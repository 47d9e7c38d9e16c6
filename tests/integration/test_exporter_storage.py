"""Storage: S3 through moto's standalone server (a real S3 API over HTTP), and the local
store's signed URLs: tampered or expired links get 403, expired exports are swept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_exporter.app import JANITOR, STORAGE, build_app
from jobdeck_exporter.storage import S3Storage

from tests.support.api import auth, job_row, seed
from tests.support.exporter import (
    download,
    exporter_config,
    finished_export,
    path_of,
    read_csv,
)
from tests.support.processes import free_port, wait_for

BUCKET = "jobdeck-exports"


@pytest.fixture
def moto_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server as a process on a free port; fake credentials for the SDK."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
async def bucket(moto_server: str) -> str:
    async def answers() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(moto_server) as resp:
                return resp.status < 500
        except aiohttp.ClientError:
            return False

    await wait_for(answers, timeout=30, what="moto server")
    async with aioboto3.Session().client("s3", endpoint_url=moto_server) as s3:
        await s3.create_bucket(Bucket=BUCKET)
    return moto_server


@pytest.fixture
async def s3_exporter(
    export_settings: Settings, bucket: str, tmp_path: Path
) -> AsyncIterator[TestClient]:
    settings = replace(export_settings, storage_url=f"s3://{BUCKET}/exports")
    app = build_app(settings, exporter_config(tmp_path, s3_endpoint_url=bucket))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_s3_export_upload_presigned_download_and_delete(
    api: TestClient, s3_exporter: TestClient, bucket: str, pg: Any
) -> None:
    await seed(pg, [job_row(queue="emails", name=f"job-{i}") for i in range(12)])
    info = await finished_export(api, {"format": "csv", "filename": "from s3"})
    assert info["status"] == "done", info
    assert info["url"].startswith(bucket + f"/{BUCKET}/exports/")
    async with aiohttp.ClientSession() as http, http.get(info["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"] == 'attachment; filename="from s3.csv"'
        rows = read_csv(await resp.read())
    assert len(rows) == 12

    resp = await api.delete(info["statusUrl"], headers=auth())
    assert resp.status == 204

    async def gone() -> bool:
        async with aioboto3.Session().client("s3", endpoint_url=bucket) as s3:
            listed = await s3.list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{info['id']}/")
        return listed["KeyCount"] == 0

    await wait_for(gone, timeout=10, what="the S3 object to be deleted")


async def test_s3_multipart_upload_of_a_large_file(bucket: str, tmp_path: Path) -> None:
    storage = S3Storage(BUCKET, "big", endpoint_url=bucket)
    payload = os.urandom(1024) * (9 * 1024 + 7)  # over one 8 MiB part
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    await storage.put("x/big.bin", path, "application/octet-stream", "big.bin")
    assert not path.exists()  # the spool file is gone once stored
    url = await storage.url("x/big.bin", "big.bin", datetime.now(UTC) + timedelta(minutes=5))
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200 and await resp.read() == payload
    await storage.check()


async def test_tampered_and_expired_local_urls_are_403(
    api: TestClient, exporter: TestClient, pg: Any
) -> None:
    await seed(pg, [job_row() for _ in range(3)])
    info = await finished_export(api, {"format": "json"})
    url = path_of(info["url"])
    assert len(await download(exporter, url)) == info["bytes"]
    tampered = [
        url.replace("sig=", "sig=0"),
        url.replace("expires=", "expires=9"),
        url.replace(".json", ".csv"),
        url.split("?")[0],
    ]
    for bad in tampered:
        resp = await exporter.get(bad)
        assert resp.status == 403, bad
        assert resp.content_type == "application/problem+json"
    key = url.split("?")[0].removeprefix("/exports/")
    signer = exporter.app[STORAGE].signer  # type: ignore[attr-defined]
    expired = signer.url("", key, int(time.time()) - 1)
    resp = await exporter.get(expired)
    assert resp.status == 403 and "expired" in (await resp.json())["detail"]


async def test_expired_exports_are_swept_with_their_files(
    api: TestClient, exporter: TestClient, pg: Any
) -> None:
    await seed(pg, [job_row() for _ in range(3)])
    info = await finished_export(api, {"format": "ndjson"})
    await pg.execute("UPDATE exports SET expires_at = now() - interval '1 second'")
    expired, lost = await exporter.app[JANITOR].sweep()
    assert (expired, lost) == (1, 0)
    assert (await api.get(info["statusUrl"], headers=auth())).status == 404
    resp = await exporter.get(path_of(info["url"]))
    assert resp.status == 404


async def test_an_export_whose_request_was_lost_is_requeued_and_run(
    api: TestClient, exporter: TestClient, pg: Any
) -> None:
    """E.g. Redis restarted without persistence: the row is there, its stream entry not."""
    await seed(pg, [job_row() for _ in range(2)])
    await pg.execute(
        "INSERT INTO exports (id, requested_by, format, filename, created_at)"
        " VALUES ('lost-1', 'admin-user', 'csv', 'lost.csv', now() - interval '1 hour')"
    )
    expired, lost = await exporter.app[JANITOR].sweep()
    assert (expired, lost) == (0, 1)

    async def done() -> bool:
        return await pg.fetchval("SELECT status FROM exports WHERE id = 'lost-1'") == "done"

    await wait_for(done, timeout=20, what="the re-queued export to run")
    info = await (await api.get("/api/v1/jobs/exports/lost-1", headers=auth())).json()
    assert info["rows"] == 2 and len(read_csv(await download(exporter, info["url"]))) == 2
