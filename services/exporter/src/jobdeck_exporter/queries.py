"""The exporter's named SQL (``sql/queries.sql``)."""

from __future__ import annotations

from jobdeck.namedsql import load

Q = load("jobdeck_exporter")
