"""``python -m jobdeck_recorder``: run the recorder until SIGTERM;
``jobdeck-recorder rebuild-rollups --start DAY --end DAY``: rebuild the analytics rollups
of a time range from ``jobs`` (``rollup_rebuild``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from jobdeck.db import create_pool
from jobdeck.logs import setup_logging
from jobdeck.settings import Settings, exit_on_config_error
from jobdeck.web import run_service

from jobdeck_recorder import rollup_rebuild
from jobdeck_recorder.app import build_app
from jobdeck_recorder.config import RecorderConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jobdeck-recorder")
    sub = parser.add_subparsers(dest="command")
    rb = sub.add_parser(
        "rebuild-rollups",
        help="rebuild the analytics rollups of whole UTC days from jobs (idempotent)",
    )
    rb.add_argument("--start", required=True, type=_utc, help="first day, e.g. 2026-11-01")
    rb.add_argument("--end", required=True, type=_utc, help="end (exclusive), e.g. 2026-12-01")
    rb.add_argument("--batch", type=int, default=rollup_rebuild.BATCH, help="jobs per read")
    args = parser.parse_args(argv)
    # The recorder never verifies or mints tokens: the JWT secret policy does not apply.
    settings, config = exit_on_config_error(
        "recorder",
        lambda: (Settings.from_env("recorder", signs_tokens=False), RecorderConfig.from_env()),
    )
    setup_logging("recorder", settings.log_level)
    if args.command == "rebuild-rollups":
        if args.end <= args.start or args.batch < 1:
            parser.error("rebuild-rollups: --end must be after --start, --batch at least 1")
        asyncio.run(_rebuild(settings.database_url, config, args))
        return
    run_service(build_app(settings, config), "recorder")


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def _rebuild(dsn: str, config: RecorderConfig, args: argparse.Namespace) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        await rollup_rebuild.rebuild(
            pool,
            args.start,
            args.end,
            config,
            batch=args.batch,
            on_day=lambda d: print(
                f"{d.day:%Y-%m-%d}: {d.jobs} jobs, levels {','.join(d.levels) or 'none'}",
                file=sys.stdout,
                flush=True,
            ),
        )
    finally:
        await pool.close()


if __name__ == "__main__":
    main()
