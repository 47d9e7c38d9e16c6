"""Named SQL queries of ``sql/queries.sql`` (``-- name: xxx`` blocks), loaded once."""

from __future__ import annotations

from jobdeck.sqlfiles import load_named

Q = load_named("jobdeck_api")
