"""The API started as a process for a benchmark, with the settings every API bench shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_api(
    db_url: str, redis_url: str, port: int, secret: str, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """Start ``jobdeck_api`` on ``port`` (rate limit off, warnings only unless ``env`` says)."""
    settings = {
        **os.environ,
        "JOBDECK_DATABASE_URL": db_url,
        "JOBDECK_REDIS_URL": redis_url,
        "JOBDECK_JWT_SECRET": secret,
        "JOBDECK_API_PORT": str(port),
        "JOBDECK_API_RATE_LIMIT": "off",
        "JOBDECK_LOG_LEVEL": "WARNING",
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobdeck_api"],
            env=settings,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
