"""Named SQL queries of ``sql/queries.sql`` (``-- name: xxx`` blocks), loaded once."""

from __future__ import annotations

import re
from importlib import resources


def load(text: str) -> dict[str, str]:
    """Split a file of ``-- name: xxx`` blocks into {name: sql}."""
    blocks: dict[str, str] = {}
    for chunk in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        blocks[name.strip()] = body.strip().rstrip(";")
    return blocks


Q = load(resources.files("jobdeck_api").joinpath("sql/queries.sql").read_text())
