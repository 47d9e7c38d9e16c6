"""``python -m jobdeck_recorder``: run the recorder until SIGTERM."""

from __future__ import annotations

from jobdeck.logs import setup_logging
from jobdeck.settings import Settings
from jobdeck.web import run_service

from jobdeck_recorder.app import build_app
from jobdeck_recorder.config import RecorderConfig


def main() -> None:
    settings = Settings.from_env("recorder")
    setup_logging("recorder", settings.log_level)
    config = RecorderConfig.from_env()
    run_service(build_app(settings, config), "recorder")


if __name__ == "__main__":
    main()
