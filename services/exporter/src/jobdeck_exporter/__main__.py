"""``python -m jobdeck_exporter``: the exporter (port ``JOBDECK_EXPORTER_PORT``, 8002)."""

from __future__ import annotations

import logging

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings, exit_on_config_error
from jobdeck.web import run_service

from jobdeck_exporter.app import build_app
from jobdeck_exporter.config import ExporterConfig


def configure() -> tuple[Settings, ExporterConfig]:
    """Settings and tuning; ConfigError if a value is bad. The JWT secret policy applies:
    download URLs are signed with a key derived from it unless ``URL_SECRET`` is set."""
    settings = Settings.from_env("exporter")
    return settings, ExporterConfig.from_env(settings)


def main() -> None:
    settings, config = exit_on_config_error("exporter", configure)
    setup_logging("exporter", settings.log_level)
    logging.getLogger(__name__).info("exporter config", extra={"config": config.masked()})
    run_service(build_app(settings, config), "exporter")


if __name__ == "__main__":
    main()
