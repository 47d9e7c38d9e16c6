"""Settings read once from the environment (prefix ``JOBDECK_``) at a service's entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit, urlunsplit

DEV_JWT_SECRET = "jobdeck-development-secret-change-me-before-deploying"

DEFAULT_PORTS = {
    "api": 8000,
    "gateway": 8001,
    "exporter": 8002,
    "scheduler": 8003,
    "recorder": 8004,
    "dashboard": 8005,
    "worker": 8010,
}


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql://postgres@127.0.0.1:5432/jobdeck"
    redis_url: str = "redis://127.0.0.1:6379/0"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key: str | None = None
    jwt_leeway_s: int = 30
    storage_url: str = "file:///tmp/jobdeck-exports"
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "INFO"
    stream_maxlen: int = 1_000_000
    instance: str = ""
    usage_interval_ms: int = 5_000  # how often each process samples its CPU and memory

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings for ``service``; unknown or malformed values fail loudly at start-up."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "port":
                continue
            raw = env.get(f"JOBDECK_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = int(raw) if f.type == "int" else raw
        port_raw = env.get(f"JOBDECK_{service.upper()}_PORT")
        values["port"] = int(port_raw) if port_raw else DEFAULT_PORTS.get(service, 0)
        if not values.get("instance"):
            values["instance"] = f"{service}-{os.getpid()}"
        return replace(cls(), **values)  # type: ignore[arg-type]

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_public_key is None and self.jwt_secret == DEV_JWT_SECRET

    def masked(self) -> dict[str, object]:
        """Effective settings with secrets and passwords hidden, for the start-up log line."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("jwt_secret", "jwt_public_key") and value:
                value = "***"
            elif isinstance(value, str) and "://" in value:
                value = _mask_url(value)
            shown[f.name] = value
        return shown


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
