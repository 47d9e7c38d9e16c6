"""The gateway's named SQL (``sql/queries.sql``), loaded once."""

from __future__ import annotations

from jobdeck.sql import load_queries

QUERIES = load_queries("jobdeck_gateway")
