"""``python -m jobdeck_scheduler.demo``: the job templates the seed's examples refer to.

The seed creates schedules from ``templateId: '550e8400-e29b-41d4-a716-446655440000'`` and
``templateId: 'price-update-template-id'``; with these two templates in place (``make run``
adds them) both examples work verbatim against the demo worker's tasks. Existing
templates of the same id or name are left as they are.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
from jobdeck.settings import Settings

DEMO_TEMPLATES = [
    {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "name": "daily-analytics-refresh",
        "description": "Demo: render the analytics report (the seed's schedule example)",
        "queue": "reports",
        "task": "generate-report",
        "data": {"sections": 3, "section_s": 0.2},
    },
    {
        "id": "price-update-template-id",
        "name": "price-update-template-id",
        "description": "Demo: parse the bundled price file (the seed's fetch example)",
        "queue": "price-file-parser",
        "task": "price-file-parser",
        "data": {"path": "prices.csv"},
    },
]


async def install(dsn: str) -> int:
    """Insert the demo templates that are missing; returns how many were added."""
    conn = await asyncpg.connect(dsn)
    added = 0
    try:
        for t in DEMO_TEMPLATES:
            status = await conn.execute(
                "INSERT INTO job_templates (id, name, description, queue, task, data, created_by)"
                " VALUES ($1, $2, $3, $4, $5, $6::jsonb, 'demo') ON CONFLICT DO NOTHING",
                t["id"], t["name"], t["description"], t["queue"], t["task"],
                json.dumps(t["data"]),
            )  # fmt: skip
            added += int(status.rsplit(" ", 1)[-1])
    finally:
        await conn.close()
    return added


def main() -> None:
    settings = Settings.from_env("scheduler")
    added = asyncio.run(install(settings.database_url))
    print(f"demo templates: {added} added")


if __name__ == "__main__":
    main()
