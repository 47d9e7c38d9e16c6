"""The page's files, read once at start-up, served from memory gzipped with an ETag.

Everything the browser loads comes from here (no CDN, no network at run time): the
page's own ES modules and styles under ``static/``, and the few files of the pinned npm
libraries listed in ``VENDOR``. Holding them in memory keeps serving cheap and lets a
missing library fail the start-up, not the first page view.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from jobdeck import JobdeckError

# URL path under /vendor/ → file inside the npm node_modules folder.
VENDOR = {
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
    "uPlot.esm.js": "uplot/dist/uPlot.esm.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


class MissingAsset(JobdeckError):
    """A file the page needs is missing: run `make install` (npm ci in services/dashboard)."""


@dataclass(frozen=True)
class Asset:
    content_type: str
    body: bytes
    gzipped: bytes
    etag: str


def load_asset(path: Path) -> Asset:
    body = path.read_bytes()
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    digest = hashlib.sha256(body).hexdigest()[:20]
    return Asset(
        content_type=content_type or "application/octet-stream",
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=f'"{digest}"',
    )


def load_assets(static_dir: Path, vendor_dir: Path) -> dict[str, Asset]:
    """URL path → asset, for every file of ``static_dir`` and every ``VENDOR`` file."""
    assets = {
        "/" + path.relative_to(static_dir).as_posix(): load_asset(path)
        for path in sorted(static_dir.rglob("*"))
        if path.is_file()
    }
    for name, relative in VENDOR.items():
        path = vendor_dir / relative
        if not path.is_file():
            raise MissingAsset(
                f"{path} is missing: run `make install` (npm ci in services/dashboard)"
            )
        assets[f"/vendor/{name}"] = load_asset(path)
    assets["/"] = assets["/index.html"]
    return assets
