"""``python -m jobdeck_dashboard``: serve the dashboard's files (port 8005)."""

from __future__ import annotations

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings, exit_on_config_error
from jobdeck.web import run_service

from jobdeck_dashboard.app import build_app
from jobdeck_dashboard.config import DashboardConfig


def main() -> None:
    # The dashboard serves files only; tokens are checked by the API and the gateway.
    settings, config = exit_on_config_error(
        "dashboard",
        lambda: (Settings.from_env("dashboard", signs_tokens=False), DashboardConfig.from_env()),
    )
    setup_logging("dashboard", settings.log_level)
    run_service(build_app(settings, config), "dashboard")


if __name__ == "__main__":
    main()
