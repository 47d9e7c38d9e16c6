"""``python -m jobdeck_exporter``: the exporter (port ``JOBDECK_EXPORTER_PORT``, 8002)."""

from __future__ import annotations

import logging

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings
from jobdeck.web import run_service

from jobdeck_exporter.app import build_app
from jobdeck_exporter.config import ExporterConfig


def main() -> None:
    settings = Settings.from_env("exporter")
    setup_logging("exporter", settings.log_level)
    config = ExporterConfig.from_env(settings)
    logging.getLogger(__name__).info("exporter config", extra={"config": config.masked()})
    run_service(build_app(settings, config), "exporter")


if __name__ == "__main__":
    main()
