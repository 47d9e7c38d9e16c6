"""Every configuration variable: a documented value works, a bad one is refused naming it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jobdeck.settings import DEV_JWT_SECRET, ConfigError, Settings
from jobdeck.usage import ResourceThresholds
from jobdeck_api.__main__ import configure as configure_api
from jobdeck_api.security import RateLimits
from jobdeck_exporter.config import ExporterConfig
from jobdeck_gateway.config import GatewayConfig
from jobdeck_recorder.config import RecorderConfig
from jobdeck_scheduler.config import SchedulerConfig
from jobdeck_worker.__main__ import configure

GOOD_SECRET = "s" * 32
BASE = {"JOBDECK_JWT_SECRET": GOOD_SECRET}
PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def settings(env: Mapping[str, str]) -> Any:
    return Settings.from_env("api", {**BASE, **env})


def api(env: Mapping[str, str]) -> Any:
    return configure_api({**BASE, **env})


def exporter(env: Mapping[str, str]) -> Any:
    env = {**BASE, **env}
    return ExporterConfig.from_env(Settings.from_env("exporter", env), env)


def worker(env: Mapping[str, str]) -> Any:
    return configure([], {**BASE, "JOBDECK_WORKER_TASKS": "jobdeck_worker.demo", **env})


Loader = Callable[[Mapping[str, str]], Any]
# (loader, variable, a good value, a bad value)
CASES: list[tuple[Loader, str, str, str]] = [
    (settings, "JOBDECK_DATABASE_URL", "postgresql://u:p@db:5432/jobdeck", "mysql://db/jobdeck"),
    (settings, "JOBDECK_REDIS_URL", "rediss://cache:6380/2", "redis://cache:port/0"),
    (settings, "JOBDECK_JWT_SECRET", "x" * 32, "short"),
    (settings, "JOBDECK_JWT_LEEWAY_S", "10", "ten"),
    (settings, "JOBDECK_JWT_JWKS_REFRESH_S", "60", "-1"),
    (settings, "JOBDECK_JWT_AUDIENCE", "jobdeck", " "),
    (settings, "JOBDECK_JWT_ISSUER", "https://idp.example", ""),
    (settings, "JOBDECK_STORAGE_URL", "s3://bucket/prefix", "ftp://host/x"),
    (settings, "JOBDECK_HOST", "0.0.0.0", ""),
    (settings, "JOBDECK_LOG_LEVEL", "debug", "verbose"),
    (settings, "JOBDECK_STREAM_MAXLEN", "100000", "0"),
    (settings, "JOBDECK_INSTANCE", "api-1", " "),
    (settings, "JOBDECK_ENV", "production", "prod"),
    (settings, "JOBDECK_USAGE_INTERVAL_MS", "1000", "often"),
    (ResourceThresholds.from_env, "JOBDECK_ALERT_PROCESS_RSS_MB", "512", "lots"),
    (SchedulerConfig.from_env, "JOBDECK_SCHEDULER_BATCH_SIZE", "100", "0"),
    (settings, "JOBDECK_API_PORT", "8080", "70000"),
    (api, "JOBDECK_API_JOB_TRACEBACKS", "hide", "strip"),
    (api, "JOBDECK_API_CORS_ORIGINS", "https://jobs.example.com", "*"),
    (RateLimits.from_env, "JOBDECK_API_RATE_LIMIT", "off", "lots"),
    (RateLimits.from_env, "JOBDECK_API_BULK_RATE_LIMIT", "off", "0/minute"),
    (RateLimits.from_env, "JOBDECK_API_BULK_RATE_LIMIT", "30/minute", "5/minute;1/second"),
    (api, "JOBDECK_API_EXPORT_WAIT_S", "0.5", "soon"),
    (api, "JOBDECK_API_EXPORT_IN_FLIGHT", "4", "0"),
    (api, "JOBDECK_API_EXPORTS_PER_HOUR", "100", "-1"),
    (api, "JOBDECK_EXPORT_MAX_ROWS", "1000000", "lots"),
    (exporter, "JOBDECK_EXPORT_MAX_ROWS", "1000000", "0"),
    (exporter, "JOBDECK_STORAGE_URL", "s3://bucket/prefix", "s3:///prefix"),
    (exporter, "JOBDECK_STORAGE_URL", "file:///var/exports", "file:exports"),
    (exporter, "JOBDECK_EXPORTER_PUBLIC_URL", "https://jobs.example.com/", "jobs.example.com"),
    (exporter, "JOBDECK_EXPORTER_URL_SECRET", "u" * 32, "short"),
    (exporter, "JOBDECK_EXPORTER_SPOOL_DIR", "/var/spool/jobdeck", "spool"),
    (exporter, "JOBDECK_S3_ENDPOINT_URL", "http://127.0.0.1:9000", "minio:9000"),
    (exporter, "JOBDECK_S3_REGION", "eu-west-1", " "),
    (worker, "JOBDECK_WORKER_QUEUES", "emails:8,reports", "emails:zero"),
    (worker, "JOBDECK_WORKER_TASKS", "jobdeck_worker.demo", "no.such.module"),
    (worker, "JOBDECK_WORKER_PORT", "0", "-5"),
]
CASES += [
    (GatewayConfig.from_env, f"JOBDECK_GATEWAY_{name.upper()}", good, bad)
    for name, good, bad in [
        ("stats_interval_s", "1.5", "0"),
        ("stats_window_s", "600", "10"),
        ("client_queue_limit", "100", "many"),
        ("client_buffer_bytes", "65536", "1"),
        ("flush_interval_s", "0", "2"),
        ("recorder_lag_alert", "500", "-1"),
        ("cors_origins", "https://jobs.example.com,http://localhost:3000", "jobs.example.com"),
        ("read_batch", "500", "0"),
        ("join_timeout_s", "5", "nan"),
        ("ping_interval_s", "10", "0"),
        ("ping_timeout_s", "5", "-1"),
        ("max_connections_per_address", "100", "0"),
        ("max_unjoined_sessions", "1000", "0"),
        ("handshakes_per_s", "5", "-1"),
        ("handshake_burst", "10", "1.5"),
        ("max_connections_per_token", "10", "0"),
        ("subscribes_per_s", "5", "inf"),
        ("subscribe_burst", "10", "0"),
        ("job_lookups_per_s", "5", "x"),
        ("job_lookup_burst", "10", "0"),
    ]
]
CASES += [
    (exporter, f"JOBDECK_EXPORTER_{name.upper()}", good, bad)
    for name, good, bad in [
        ("concurrency", "4", "0"),
        ("lease_ms", "10000", "10"),
        ("max_attempts", "3", "-1"),
        ("retention_s", "86400", "2592000"),  # past the 7 days of an S3 presigned URL
        ("progress_interval_ms", "500", "x"),
        ("janitor_interval_ms", "60000", "1.5"),
    ]
]
CASES += [
    (RecorderConfig.from_env, f"JOBDECK_RECORDER_{name.upper()}", "5", bad)
    for name, bad in [
        ("batch_size", "0"),
        ("block_ms", "soon"),
        ("claim_idle_ms", "-1"),
        ("claim_interval_ms", "1e3"),
        ("backoff_min_ms", "x"),
        ("backoff_max_ms", "x"),
        ("lag_interval_ms", "x"),
        ("lag_ttl_s", "0"),
        ("consumer_expiry_ms", "x"),
        ("pg_pool_size", "0"),
        ("janitor_interval_ms", "-5"),
        ("lost_after_ms", "x"),
        ("lost_confirm_ms", "x"),
        ("janitor_batch", "0"),
    ]
]


@pytest.mark.parametrize(
    ("load", "name", "good", "bad"), CASES, ids=[f"{c[1]}={c[3]}" for c in CASES]
)
def test_each_variable_accepts_its_values_and_names_itself_when_bad(
    load: Loader, name: str, good: str, bad: str
) -> None:
    load({name: good})
    with pytest.raises(ConfigError) as info:
        load({name: bad})
    message = str(info.value)
    assert message.startswith(name) and "accepts" in message and "\n" not in message


def test_the_public_key_variable_takes_a_pem_key_with_audience_and_issuer() -> None:
    idp = {"JOBDECK_JWT_AUDIENCE": "jobdeck", "JOBDECK_JWT_ISSUER": "https://idp"}
    assert settings({"JOBDECK_JWT_PUBLIC_KEY": PEM, **idp}).jwt_public_key == PEM.strip()
    with pytest.raises(ConfigError, match=r"^JOBDECK_JWT_PUBLIC_KEY: accepts a PEM"):
        settings({"JOBDECK_JWT_PUBLIC_KEY": "not a key", **idp})
    with pytest.raises(ConfigError, match=r"^JOBDECK_JWT_AUDIENCE: required"):
        settings({"JOBDECK_JWT_PUBLIC_KEY": PEM})
    with pytest.raises(ConfigError, match=r"^JOBDECK_JWT_ISSUER: required"):
        settings({"JOBDECK_JWT_JWKS_URL": "https://idp/jwks", "JOBDECK_JWT_AUDIENCE": "a"})
    with pytest.raises(ConfigError, match=r"^JOBDECK_JWT_JWKS_URL=.*accepts a URL"):
        settings({"JOBDECK_JWT_JWKS_URL": "idp/jwks", **idp})


@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "change-me-in-production", "x" * 31, None])
def test_a_public_or_short_secret_needs_development_mode(secret: str | None) -> None:
    env = {} if secret is None else {"JOBDECK_JWT_SECRET": secret}
    with pytest.raises(ConfigError, match=r"^JOBDECK_JWT_SECRET: .*JOBDECK_ENV=development"):
        Settings.from_env("api", env)
    assert Settings.from_env("api", {**env, "JOBDECK_ENV": "development"}).development
    # Commands that never sign or check tokens do not need a secret at all.
    assert Settings.from_env("recorder", env, signs_tokens=False).env == "production"


def test_rate_limits_off_disables_one_bucket_only() -> None:
    limits = RateLimits.from_env({"JOBDECK_API_BULK_RATE_LIMIT": "off"})
    assert limits.item("bulk") is None and limits.item("default") is not None
    both = RateLimits.from_env(
        {"JOBDECK_API_RATE_LIMIT": "OFF", "JOBDECK_API_BULK_RATE_LIMIT": "off"}
    )
    assert both.item("default") is None and both.item("bulk") is None
