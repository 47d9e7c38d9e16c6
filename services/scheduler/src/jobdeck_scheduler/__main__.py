"""``python -m jobdeck_scheduler``: run a scheduler replica until SIGTERM."""

from __future__ import annotations

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings, exit_on_config_error
from jobdeck.web import run_service

from jobdeck_scheduler.app import build_app
from jobdeck_scheduler.config import SchedulerConfig


def main() -> None:
    # The scheduler never verifies or mints tokens: the JWT secret policy does not apply.
    settings, config = exit_on_config_error(
        "scheduler",
        lambda: (Settings.from_env("scheduler", signs_tokens=False), SchedulerConfig.from_env()),
    )
    setup_logging("scheduler", settings.log_level)
    run_service(build_app(settings, config), "scheduler")


if __name__ == "__main__":
    main()
