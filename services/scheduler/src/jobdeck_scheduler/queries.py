"""The scheduler's named SQL (``sql/queries.sql``)."""

from __future__ import annotations

from jobdeck.sqlfiles import load_named

Q = load_named("jobdeck_scheduler")
