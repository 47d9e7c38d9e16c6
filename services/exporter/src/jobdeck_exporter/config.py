"""Exporter tuning, read once at the entry point from ``JOBDECK_EXPORTER_*`` variables.

Storage itself is the shared ``JOBDECK_STORAGE_URL``; the S3 endpoint and region are
``JOBDECK_S3_ENDPOINT_URL`` / ``JOBDECK_S3_REGION`` (credentials: the usual AWS variables).
Every value is checked as it is read: a bad one is a ``ConfigError`` naming the variable and
what it accepts, and the exporter does not start (``jobdeck.settings.exit_on_config_error``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from jobdeck.exports import DEFAULT_MAX_ROWS, max_rows_from_env
from jobdeck.settings import MIN_SECRET_BYTES, ConfigError, Settings, parse_int, parse_url

# Bounds of the integer settings. Retention stops at 7 days: an S3 presigned URL lives no
# longer (SigV4).
INT_BOUNDS = {
    "concurrency": (1, 64),
    "lease_ms": (1_000, 3_600_000),
    "max_attempts": (1, 100),
    "retention_s": (60, 7 * 86_400),
    "progress_interval_ms": (10, 3_600_000),
    "janitor_interval_ms": (100, 86_400_000),
}
# Variables shared with other services.
_ENV_NAMES = {"s3_endpoint_url": "JOBDECK_S3_ENDPOINT_URL", "s3_region": "JOBDECK_S3_REGION"}


def _http_url(name: str, raw: str) -> str:
    return parse_url(name, raw, ("http", "https")).rstrip("/")


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name}: accepts a non-empty value (unset it for the default)")
    return raw.strip()


def _absolute_path(name: str, raw: str) -> str:
    if not PurePosixPath(raw.strip()).is_absolute():
        raise ConfigError(f"{name}={raw!r}: accepts an absolute directory path")
    return raw.strip()


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "public_url": _http_url,
    "url_secret": lambda name, raw: raw,  # its length is checked with the environment
    "spool_dir": _absolute_path,
    "s3_endpoint_url": _http_url,
    "s3_region": _text,
}


@dataclass(frozen=True)
class ExporterConfig:
    concurrency: int = 2  # exports one replica runs at once
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
        """``JOBDECK_EXPORTER_LEASE_MS`` etc.; a bad value raises ``ConfigError``."""
        env = os.environ if env is None else env
        values: dict[str, object] = {"max_rows": max_rows_from_env(env)}
        for f in fields(cls):
            name = _ENV_NAMES.get(f.name, f"JOBDECK_EXPORTER_{f.name.upper()}")
            raw = env.get(name)
            if raw is None or f.name == "max_rows":
                continue
            if f.name in INT_BOUNDS:
                values[f.name] = parse_int(name, raw, *INT_BOUNDS[f.name])
            else:
                values[f.name] = _PARSERS[f.name](name, raw)
        _check_storage(settings.storage_url)
        config = replace(cls(), **values)  # type: ignore[arg-type]
        short = 0 < len(config.url_secret.encode()) < MIN_SECRET_BYTES
        if short and not settings.development:  # the JWT secret's policy: a short key is guessable
            raise ConfigError(
                f"JOBDECK_EXPORTER_URL_SECRET: accepts a secret of at least {MIN_SECRET_BYTES}"
                " bytes (e.g. `openssl rand -hex 32`), or unset it to derive one from"
                " JOBDECK_JWT_SECRET"
            )
        if not config.url_secret:
            derived = hashlib.sha256(b"jobdeck-export-urls:" + settings.jwt_secret.encode())
            config = replace(config, url_secret=derived.hexdigest())
        return config

    def masked(self) -> dict[str, object]:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**shown, "url_secret": "***"}


def _check_storage(url: str) -> None:
    """What ``Settings`` cannot know: an S3 URL names a bucket, a file URL a directory."""
    parts = urlsplit(url)
    if parts.scheme == "s3" and not parts.netloc:
        raise ConfigError(f"JOBDECK_STORAGE_URL={url!r}: accepts s3://bucket/prefix")
    if parts.scheme == "file" and not PurePosixPath(parts.path).is_absolute():
        raise ConfigError(f"JOBDECK_STORAGE_URL={url!r}: accepts file:///absolute/path")
