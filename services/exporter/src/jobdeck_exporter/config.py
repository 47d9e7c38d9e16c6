"""Exporter tuning, read once at the entry point from ``JOBDECK_EXPORTER_*`` variables.

Storage itself is the shared ``JOBDECK_STORAGE_URL``; the S3 endpoint and region are
``JOBDECK_S3_ENDPOINT_URL`` / ``JOBDECK_S3_REGION`` (credentials: the usual AWS variables).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from jobdeck.exports import DEFAULT_MAX_ROWS, MAX_ROWS_ENV
from jobdeck.settings import Settings

# Variables shared with other services (the API refuses exports over the same row limit).
_ENV_NAMES = {
    "max_rows": MAX_ROWS_ENV,
    "s3_endpoint_url": "JOBDECK_S3_ENDPOINT_URL",
    "s3_region": "JOBDECK_S3_REGION",
}


@dataclass(frozen=True)
class ExporterConfig:
    concurrency: int = 2  # exports one replica runs at once
    chunk_rows: int = 5_000  # rows per fetch from the server-side cursor
    lease_ms: int = 30_000  # an export whose owner stopped renewing this long is taken over
    max_attempts: int = 2  # owners lost before an export is failed instead of retried
    retention_s: int = 3_600  # how long a finished export (file, row, URL) lives
    max_rows: int = DEFAULT_MAX_ROWS  # failed above this many matching rows
    progress_interval_ms: int = 1_000  # progress rows and events at most this often
    janitor_interval_ms: int = 30_000  # expired exports deleted, lost ones re-queued
    public_url: str = ""  # prefix of local download URLs, e.g. http://localhost:3000
    url_secret: str = ""  # HMAC key of local download URLs; default: derived from the JWT secret
    spool_dir: str = ""  # where files are built before storing; default: the system temp dir
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> ExporterConfig:
        """``JOBDECK_EXPORTER_CHUNK_ROWS`` etc.; a malformed value fails loudly at start-up."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = _ENV_NAMES.get(f.name, f"JOBDECK_EXPORTER_{f.name.upper()}")
            raw = env.get(name)
            if raw is None:
                continue
            if f.type == "int":
                value = int(raw)
                if value < 1:
                    raise ValueError(f"{name} must be positive")
                values[f.name] = value
            else:
                values[f.name] = raw
        config = replace(cls(), **values)  # type: ignore[arg-type]
        if not config.url_secret:
            derived = hashlib.sha256(b"jobdeck-export-urls:" + settings.jwt_secret.encode())
            config = replace(config, url_secret=derived.hexdigest())
        return config

    def masked(self) -> dict[str, object]:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**shown, "url_secret": "***"}
