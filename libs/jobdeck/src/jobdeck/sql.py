"""Named SQL: a ``.sql`` file of ``-- name: xxx`` blocks, loaded once per service.

Each service keeps its static queries as SQL in its own package (procrastinate's
``sql/queries.sql``); this is the one reader of that format, so that every service
parses the same way: a block runs from its ``-- name:`` line to the next one; lines that
are only a comment are dropped (they document the query for readers of the file, not
for Postgres), and the trailing ``;`` is removed.
"""

from __future__ import annotations

from importlib import resources

from jobdeck import JobdeckError

NAME_MARK = "-- name:"


class QueryFileError(JobdeckError):
    """A named-SQL file is malformed."""


def parse_queries(text: str) -> dict[str, str]:
    """Split ``-- name: xxx`` blocks into ``{name: sql}``; a name given twice is an error."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []

    def close() -> None:
        if name is None:
            return
        if name in queries:
            raise QueryFileError(f"query {name!r} is defined twice")
        sql = "\n".join(lines).strip().rstrip(";").rstrip()
        if not sql:
            raise QueryFileError(f"query {name!r} has no SQL")
        queries[name] = sql

    for line in text.splitlines():
        if line.startswith(NAME_MARK):
            close()
            name, lines = line[len(NAME_MARK) :].strip(), []
        elif name is not None and not line.lstrip().startswith("--"):
            lines.append(line)
    close()
    return queries


def load_queries(package: str, resource: str = "sql/queries.sql") -> dict[str, str]:
    """The named queries of ``resource`` inside ``package`` (read from the installed files)."""
    path = resources.files(package)
    for part in resource.split("/"):
        path = path.joinpath(part)
    return parse_queries(path.read_text())


SHARED = load_queries("jobdeck", "queries.sql")
"""Queries more than one service runs (``jobdeck/queries.sql``): one text, one plan to tune."""
