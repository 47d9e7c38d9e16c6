"""``python -m jobdeck_recorder``: run the recorder until SIGTERM."""

from __future__ import annotations

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings, exit_on_config_error
from jobdeck.web import run_service

from jobdeck_recorder.app import build_app
from jobdeck_recorder.config import RecorderConfig


def main() -> None:
    # The recorder never verifies or mints tokens: the JWT secret policy does not apply.
    settings, config = exit_on_config_error(
        "recorder",
        lambda: (Settings.from_env("recorder", signs_tokens=False), RecorderConfig.from_env()),
    )
    setup_logging("recorder", settings.log_level)
    run_service(build_app(settings, config), "recorder")


if __name__ == "__main__":
    main()
