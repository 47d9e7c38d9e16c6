"""A job row as API JSON: the one mapping from the jobs table's columns to the models.

Search pages are built straight from the rows (see ``search_page_json``); the detail
endpoint validates its one model from the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
from jobdeck import jobsql
from pydantic.alias_generators import to_snake
from pydantic_core import to_json

from jobdeck_api.search_models import JobSummary

# (row column, JobSummary field): the mapping from the jobs table to the API, from the
# one list of (column, public name) that exports share (``jobdeck.jobsql``).
SUMMARY_FIELDS = tuple((column, to_snake(name)) for column, name in jobsql.SUMMARY_FIELDS)
DATA_FIELDS = tuple((column, to_snake(name)) for column, name in jobsql.DATA_FIELDS)


def summary(row: Mapping[str, Any], include_data: bool) -> dict[str, Any]:
    """A job row as ``JobSummary`` fields (by Python name)."""
    out = {field: row[column] for column, field in SUMMARY_FIELDS}
    if include_data:
        out.update({field: row[column] for column, field in DATA_FIELDS})
    return out


def _alias(field: str) -> str:
    info = JobSummary.model_fields[field]
    return info.alias or field


# Column of the jobs table -> JobSummary's JSON name (camelCase).
_ALIAS_OF = {column: _alias(field) for column, field in SUMMARY_FIELDS + DATA_FIELDS}
_NO_DATA = {_ALIAS_OF[column]: None for column, _ in DATA_FIELDS}


def search_page_json(rows: Sequence[asyncpg.Record], include_data: bool, **page: Any) -> bytes:
    """A search page as ``SearchResponse`` JSON, built straight from the rows.

    Rows come from our own schema, so validating 20 models per request would add nothing
    but CPU (a third of the handler's): each row's values go under the models' aliases
    (into a copy of a dict with every key, the cheapest way to build 20 of them) and
    orjson writes the page (timestamps as ``...Z``, like pydantic). The schema stays
    SearchResponse's, which the fuzz test checks every response against.
    """
    items: list[dict[str, Any]] = []
    if rows:
        # (Iterating a Record yields its values; its column names take ``keys()``.)
        aliases = [_ALIAS_OF[column] for column in rows[0].keys()]  # noqa: SIM118
        template = dict.fromkeys(aliases)
        if not include_data:
            template.update(_NO_DATA)
        for row in rows:
            item = template.copy()
            item.update(zip(aliases, row, strict=True))
            items.append(item)
    body = {"items": items, **page}
    try:
        return orjson.dumps(body, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # job data orjson cannot write (an int past 64 bits)
        return to_json(body)
