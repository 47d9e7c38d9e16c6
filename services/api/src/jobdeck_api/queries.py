"""The api's named SQL (``sql/queries.sql``), loaded once."""

from __future__ import annotations

from jobdeck.sql import load_queries

Q = load_queries("jobdeck_api")
