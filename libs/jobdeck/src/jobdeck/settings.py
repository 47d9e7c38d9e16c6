"""Settings read once from the environment (prefix ``JOBDECK_``) at a service's entry point.

Every value is checked when read: a bad one raises ``ConfigError`` naming the variable and
what it accepts, and ``exit_on_config_error`` turns that into one line on stderr and exit
code 2 — a service never starts on a value it would silently ignore or crash on later.

Secret policy: the built-in development secret, or any HS256 secret shorter than 32 bytes,
is refused unless ``JOBDECK_ENV=development`` (which ``make run`` and the tests set): with
it anyone can mint tokens. A public key or a JWKS URL needs ``JOBDECK_JWT_AUDIENCE`` and
``JOBDECK_JWT_ISSUER``, so that an identity provider's tokens for other applications do not
pass.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from jobdeck import JobdeckError

DEV_JWT_SECRET = "jobdeck-development-secret-change-me-before-deploying"
# Secrets the project itself publishes (settings default, docker-compose's fallback).
PUBLIC_SECRETS = frozenset({DEV_JWT_SECRET, "change-me-in-production"})
MIN_SECRET_BYTES = 32
ENVIRONMENTS = ("development", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DEFAULT_PORTS = {
    "api": 8000,
    "gateway": 8001,
    "exporter": 8002,
    "scheduler": 8003,
    "recorder": 8004,
    "dashboard": 8005,
    "worker": 8010,
}

T = TypeVar("T")


class ConfigError(JobdeckError):
    """A setting has a value the service cannot run with."""


def parse_int(name: str, raw: str, low: int, high: int) -> int:
    """An integer environment value in [low, high], or a ConfigError saying so."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: accepts an integer from {low} to {high}")
    return value


def parse_float(name: str, raw: str, low: float, high: float) -> float:
    """A finite number in [low, high], or a ConfigError saying so."""
    try:
        value = float(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: accepts a number from {low:g} to {high:g}")
    return value


def parse_choice(name: str, raw: str, choices: tuple[str, ...], fold: bool = False) -> str:
    value = raw.strip().upper() if fold else raw.strip()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r}: accepts one of {', '.join(choices)}")
    return value


def parse_url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    """A URL with one of ``schemes``, or a ConfigError saying so (a password is masked)."""
    try:
        parts = urlsplit(raw.strip())
        ok = parts.scheme in schemes and bool(parts.netloc or parts.path)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{name}={_mask_url(raw)!r}: accepts a URL starting with "
            + " or ".join(f"{s}://" for s in schemes)
        )
    return raw.strip()


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name}: accepts a non-empty value (unset it for the default)")
    return raw.strip()


def _public_key(name: str, raw: str) -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(raw.strip().encode())
    except ValueError:
        raise ConfigError(
            f"{name}: accepts a PEM public key (-----BEGIN PUBLIC KEY-----)"
        ) from None
    return raw.strip()


# How each ``Settings`` field is read: variable suffix → parser of the raw text.
_PARSERS: dict[str, Callable[[str, str], object]] = {
    "database_url": lambda n, r: parse_url(n, r, ("postgresql", "postgres")),
    "redis_url": lambda n, r: parse_url(n, r, ("redis", "rediss", "unix")),
    "jwt_secret": lambda n, r: r,  # the policy (length, public values) is checked below
    "jwt_public_key": _public_key,
    "jwt_jwks_url": lambda n, r: parse_url(n, r, ("https", "http")),
    "jwt_jwks_refresh_s": lambda n, r: parse_int(n, r, 0, 3600),
    "jwt_audience": _text,
    "jwt_issuer": _text,
    "jwt_leeway_s": lambda n, r: parse_int(n, r, 0, 300),
    "storage_url": lambda n, r: parse_url(n, r, ("file", "s3")),
    "host": _text,
    "log_level": lambda n, r: parse_choice(n, r, LOG_LEVELS, fold=True),
    "stream_maxlen": lambda n, r: parse_int(n, r, 1000, 10**9),
    "instance": _text,
    "usage_interval_ms": lambda n, r: parse_int(n, r, 100, 3_600_000),
    "env": lambda n, r: parse_choice(n, r.lower(), ENVIRONMENTS),
}


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql://postgres@127.0.0.1:5432/jobdeck"
    redis_url: str = "redis://127.0.0.1:6379/0"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    # At most one refetch of the JWKS per this many seconds for a token naming an unknown
    # ``kid`` (key rotation); known keys are kept 10 times as long.
    jwt_jwks_refresh_s: int = 30
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_s: int = 30
    storage_url: str = "file:///tmp/jobdeck-exports"
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "INFO"
    stream_maxlen: int = 1_000_000
    instance: str = ""
    usage_interval_ms: int = 5_000  # how often each process samples its CPU and memory
    env: str = "production"

    @classmethod
    def from_env(
        cls, service: str, env: Mapping[str, str] | None = None, signs_tokens: bool = True
    ) -> Settings:
        """Build settings for ``service``; a malformed value raises ``ConfigError``.

        ``signs_tokens=False`` skips the secret policy, for commands that never verify or
        mint a token (``jobdeck migrate``).
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"JOBDECK_{f.name.upper()}")
            if f.name == "port" or raw is None:
                continue
            values[f.name] = _PARSERS[f.name](f"JOBDECK_{f.name.upper()}", raw)
        port_name = f"JOBDECK_{service.upper()}_PORT"
        port_raw = env.get(port_name)
        values["port"] = (
            parse_int(port_name, port_raw, 0, 65535) if port_raw else DEFAULT_PORTS.get(service, 0)
        )
        if not values.get("instance"):
            values["instance"] = f"{service}-{os.getpid()}"
        settings = replace(cls(), **values)  # type: ignore[arg-type]
        if signs_tokens:
            settings.check_token_policy()
        return settings

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def uses_dev_secret(self) -> bool:
        return self.uses_secret and self.jwt_secret in PUBLIC_SECRETS

    @property
    def uses_secret(self) -> bool:
        """HS256 with the shared secret (no public key, no JWKS URL)."""
        return self.jwt_public_key is None and self.jwt_jwks_url is None

    def check_token_policy(self) -> None:
        """Refuse a publicly known or short secret outside development, and a public key
        or JWKS URL without the audience and issuer its tokens must carry."""
        if self.jwt_public_key is not None and self.jwt_jwks_url is not None:
            raise ConfigError(
                "JOBDECK_JWT_PUBLIC_KEY and JOBDECK_JWT_JWKS_URL: accepts one of them, not both"
            )
        if not self.uses_secret:
            source = "JOBDECK_JWT_PUBLIC_KEY" if self.jwt_public_key else "JOBDECK_JWT_JWKS_URL"
            for name, value in (("AUDIENCE", self.jwt_audience), ("ISSUER", self.jwt_issuer)):
                if value is None:
                    raise ConfigError(
                        f"JOBDECK_JWT_{name}: required with {source} (the value your identity "
                        f"provider puts in the tokens' '{name[:3].lower()}' claim)"
                    )
            return
        if self.development:
            return
        if self.jwt_secret in PUBLIC_SECRETS:
            raise ConfigError(
                "JOBDECK_JWT_SECRET: is the published development default; set a random secret "
                f"of at least {MIN_SECRET_BYTES} bytes (or JOBDECK_ENV=development on a dev box)"
            )
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"JOBDECK_JWT_SECRET: accepts a secret of at least {MIN_SECRET_BYTES} bytes "
                "(e.g. `openssl rand -hex 32`), or JOBDECK_ENV=development"
            )

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


def exit_on_config_error(service: str, load: Callable[[], T]) -> T:
    """``load()``'s result, or — on a ConfigError — one JSON line on stderr and exit 2."""
    try:
        return load()
    except ConfigError as exc:
        line = {"level": "error", "service": service, "msg": f"configuration error: {exc}"}
        sys.stderr.write(json.dumps(line) + "\n")
        raise SystemExit(2) from None


def _mask_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))
