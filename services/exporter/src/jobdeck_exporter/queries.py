"""The exporter's named SQL (``sql/queries.sql``)."""

from __future__ import annotations

from jobdeck.sql import load_queries

Q = load_queries("jobdeck_exporter")
