"""Named SQL files: ``-- name: xxx`` blocks (procrastinate's ``queries.sql`` style).

Comment lines inside a block are dropped; a block ends where the next name starts.
"""

from __future__ import annotations

from importlib import resources


def load(package: str, path: str = "sql/queries.sql") -> dict[str, str]:
    """The blocks of ``path`` inside ``package``, as {name: sql}, read once at import."""
    text = resources.files(package).joinpath(path).read_text()
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("-- name:"):
            current = queries.setdefault(line.split(":", 1)[1].strip(), [])
        elif current is not None and not line.lstrip().startswith("--"):
            current.append(line)
    return {name: "\n".join(lines).strip().rstrip(";") for name, lines in queries.items()}
