"""``python -m jobdeck_scheduler``: run a scheduler replica until SIGTERM."""

from __future__ import annotations

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings
from jobdeck.web import run_service

from jobdeck_scheduler.app import build_app
from jobdeck_scheduler.config import SchedulerConfig


def main() -> None:
    settings = Settings.from_env("scheduler")
    setup_logging("scheduler", settings.log_level)
    config = SchedulerConfig.from_env()
    run_service(build_app(settings, config), "scheduler")


if __name__ == "__main__":
    main()
