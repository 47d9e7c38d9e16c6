"""The dashboard's file server: gzip, ETag revalidation, security headers, 404 as problem
JSON, and a start-up that refuses to run without the pinned browser libraries."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jobdeck.settings import Settings
from jobdeck_dashboard.app import build_app
from jobdeck_dashboard.assets import VENDOR, MissingAsset, load_assets
from jobdeck_dashboard.config import DashboardConfig


@pytest.fixture
async def client() -> TestClient:  # type: ignore[misc]
    async with TestClient(TestServer(build_app(Settings(), DashboardConfig()))) as c:
        yield c


async def test_index_is_served_gzipped_with_an_etag_and_a_strict_csp(client: TestClient) -> None:
    resp = await client.get("/", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    body = gzip.decompress(await resp.read()).decode()
    assert '<script type="module" src="/js/main.js">' in body

    again = await client.get("/", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


async def test_modules_and_vendor_files_have_javascript_types(client: TestClient) -> None:
    for path in ["/js/main.js", *(f"/vendor/{name}" for name in VENDOR)]:
        resp = await client.get(path)
        assert resp.status == 200, path
        expected = "text/css" if path.endswith(".css") else "text/javascript"
        assert resp.headers["Content-Type"].startswith(expected), path


async def test_unknown_paths_are_problem_json_404(client: TestClient) -> None:
    resp = await client.get("/js/../../etc/passwd")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert (await client.get("/healthz")).status == 200


def test_missing_vendor_files_fail_the_start_up(tmp_path: Path) -> None:
    with pytest.raises(MissingAsset, match="make install"):
        build_app(Settings(), DashboardConfig(vendor_dir=tmp_path))


def test_every_file_of_the_page_together_stays_under_500_kb_compressed() -> None:
    config = DashboardConfig()
    assets = load_assets(config.static_dir, config.vendor_dir)
    total = sum(len(asset.gzipped) for path, asset in assets.items() if path != "/")
    assert total < 500 * 1024, total
