"""Named SQL files: ``-- name: xxx`` blocks in a package's ``.sql`` file, loaded once.

SQL lives as SQL (see CONVENTIONS.md); a service keeps its queries in
``<package>/sql/queries.sql`` and looks them up by name.
"""

from __future__ import annotations

import re
from importlib import resources


def parse_named(text: str) -> dict[str, str]:
    """Split ``-- name: xxx`` blocks into {name: sql}; comment lines inside a block stay."""
    blocks: dict[str, str] = {}
    for chunk in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        blocks[name.strip()] = body.strip().rstrip(";")
    return blocks


def load_named(package: str, path: str = "sql/queries.sql") -> dict[str, str]:
    return parse_named(resources.files(package).joinpath(path).read_text())
