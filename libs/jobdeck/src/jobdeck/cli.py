"""The ``jobdeck`` command: ``jobdeck migrate`` and ``jobdeck token``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from jobdeck.auth import mint_token
from jobdeck.db import ensure_database, migrate
from jobdeck.settings import Settings, exit_on_config_error


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
    # Only ``token`` signs anything: ``migrate`` runs without a JWT secret.
    settings = exit_on_config_error(
        "jobdeck", lambda: Settings.from_env("cli", signs_tokens=args.command == "token")
    )

    if args.command == "migrate":
        dsn = args.database_url or settings.database_url
        asyncio.run(ensure_database(dsn))
        applied = asyncio.run(migrate(dsn))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'up to date'}")
        return 0
    queues: str | list[str] = "*" if args.queues == "*" else args.queues.split(",")
    if not settings.uses_secret:
        parser.error("token: tokens are minted by your identity provider (a public key is set)")
    token = mint_token(
        settings.jwt_secret,
        args.sub,
        [args.role],
        queues,
        args.ttl,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
