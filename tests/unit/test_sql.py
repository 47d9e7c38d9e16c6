"""The one reader of ``-- name:`` SQL files, and the files every service ships."""

from __future__ import annotations

import pytest
from jobdeck.sql import SHARED, QueryFileError, load_queries, parse_queries

TEXT = """-- A header comment, not part of any query.

-- name: one
-- What it is for (a comment for readers, dropped).
SELECT 1
FROM t;

-- name: two
SELECT 2 -- an end-of-line comment stays with its line
"""


def test_blocks_are_split_by_name_without_comment_lines_or_the_semicolon() -> None:
    assert parse_queries(TEXT) == {
        "one": "SELECT 1\nFROM t",
        "two": "SELECT 2 -- an end-of-line comment stays with its line",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;", "defined twice"),
        ("-- name: a\n-- only a comment\n", "has no SQL"),
    ],
)
def test_a_malformed_file_is_refused_at_load(text: str, reason: str) -> None:
    with pytest.raises(QueryFileError, match=reason):
        parse_queries(text)


@pytest.mark.parametrize("package", ["jobdeck_api", "jobdeck_gateway", "jobdeck_recorder"])
def test_every_service_file_loads_and_shares_nothing_with_the_lib(package: str) -> None:
    queries = load_queries(package)
    assert queries and all(sql.strip() for sql in queries.values())
    assert not set(queries) & set(SHARED)  # a shared query lives once, in jobdeck/queries.sql
