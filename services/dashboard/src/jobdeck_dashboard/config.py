"""Dashboard-only settings, read from the environment once at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# `make install` runs `npm ci` in services/dashboard; an editable install finds it here.
DEFAULT_VENDOR_DIR = PACKAGE_DIR.parents[1] / "node_modules"


@dataclass(frozen=True)
class DashboardConfig:
    """Where the page's own files and the pinned npm libraries it serves live.

    ``vendor_dir`` is an npm ``node_modules`` folder holding the exact files of
    ``assets.VENDOR``; the container image and other layouts point it elsewhere with
    ``JOBDECK_DASHBOARD_VENDOR_DIR``.
    """

    static_dir: Path = PACKAGE_DIR / "static"
    vendor_dir: Path = DEFAULT_VENDOR_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if env is None else env
        vendor = env.get("JOBDECK_DASHBOARD_VENDOR_DIR")
        return cls(vendor_dir=Path(vendor) if vendor else DEFAULT_VENDOR_DIR)
