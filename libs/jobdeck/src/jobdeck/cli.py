"""The ``jobdeck`` command: ``jobdeck migrate`` and ``jobdeck token``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from jobdeck.auth import mint_token
from jobdeck.db import ensure_database, migrate
from jobdeck.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobdeck")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("migrate", help="create the database if needed and apply migrations")
    m.add_argument("--database-url", help="defaults to JOBDECK_DATABASE_URL")
    t = sub.add_parser("token", help="mint a JWT for local use (signed with JOBDECK_JWT_SECRET)")
    t.add_argument("--sub", default="dev")
    t.add_argument("--role", default="admin", choices=["viewer", "operator", "admin"])
    t.add_argument("--queues", default="*", help="comma-separated queue names, or *")
    t.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    settings = Settings.from_env("cli")

    if args.command == "migrate":
        dsn = args.database_url or settings.database_url
        asyncio.run(ensure_database(dsn))
        applied = asyncio.run(migrate(dsn))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'up to date'}")
        return 0
    queues: str | list[str] = "*" if args.queues == "*" else args.queues.split(",")
    print(mint_token(settings.jwt_secret, args.sub, [args.role], queues, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
