"""``python -m jobdeck_dashboard``: serve the dashboard's files (port 8005)."""

from __future__ import annotations

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings
from jobdeck.web import run_service

from jobdeck_dashboard.app import build_app
from jobdeck_dashboard.config import DashboardConfig


def main() -> None:
    settings = Settings.from_env("dashboard")
    setup_logging("dashboard", settings.log_level)
    run_service(build_app(settings, DashboardConfig.from_env()), "dashboard")


if __name__ == "__main__":
    main()
