"""Named SQL of the gateway (``queries.sql``, ``-- name: xxx`` blocks)."""

from __future__ import annotations

from importlib import resources


def load_queries() -> dict[str, str]:
    text = resources.files(__name__).joinpath("queries.sql").read_text()
    queries: dict[str, str] = {}
    name: str | None = None
    for line in text.splitlines():
        if line.startswith("-- name:"):
            name = line.split(":", 1)[1].strip()
            queries[name] = ""
        elif name is not None and not line.startswith("--"):
            queries[name] += line + "\n"
    return {k: v.strip() for k, v in queries.items()}


QUERIES = load_queries()
