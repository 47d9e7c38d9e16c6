"""Job search as SQL: the shared filters of ``jobdeck.jobsql``, plus paging and counts.

Paging is by page/offset or by an opaque keyset cursor (base64 of the last row's sort
values and id) that stays fast however deep it goes. Pure functions: tested without a database.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from jobdeck.filters import EARLIEST, LATEST, SortField, SortOrder
from jobdeck.jobsql import (
    DATA_COLUMNS,
    DATE_COLUMNS,
    SUMMARY_COLUMNS,
    SortKey,
    Sql,
    filter_jobs,
    like_pattern,
    order_by,
    search_term,
    sort_spec,
)

from jobdeck_api.errors import BadParameter
from jobdeck_api.routing import storable
from jobdeck_api.search_models import EXACT_TOTAL_MAX, SearchQuery
from jobdeck_api.search_skew import SPANS_LAG_MS, Restriction

COUNT_CAP = 10_000
# Past this many estimated matches the capped count is skipped: the estimate is the answer.
ESTIMATE_TRUSTED = 4 * COUNT_CAP
# A capped count taking longer than this is abandoned for the estimate.
COUNT_BUDGET_S = 0.025
# Planner cost (its own units) above which a count is not attempted. ~10,000 is a few ms
# of work here; a 4,000-row match found through two bitmap scans of 1M rows costs 15,000.
COUNT_COST_LIMIT = 10_000.0
# A page this shallow, on one queue and one status sorted by creation time, is an index range
# read (``jobsql.one_of``): the one shape served without asking the planner first (still
# under the page budget).
SIMPLE_MAX_OFFSET = 1_000


@dataclass(frozen=True)
class SearchPlan:
    sql: str
    args: list[Any]
    count_sql: str
    count_args: list[Any]
    estimate_sql: str
    estimate_args: list[Any]  # also the arguments of ``matches``
    matches: str  # the filters as one condition on a row of ``jobs``
    sort: list[SortKey]  # column, order, nullable, kind
    offset: int
    limit: int
    count_cap: int = COUNT_CAP
    estimate_trusted: int = ESTIMATE_TRUSTED
    count_budget_s: float = COUNT_BUDGET_S
    count_cost_limit: float = COUNT_COST_LIMIT
    empty: bool = False  # the caller may see none of the requested queues
    simple: bool = False  # an index range read (see SIMPLE_MAX_OFFSET)
    restriction: Restriction = field(default_factory=Restriction)  # queues and names searched
    exact_total_max: int = EXACT_TOTAL_MAX


def sort_fingerprint(sort: Sequence[SortKey]) -> str:
    return _fingerprint(",".join(f"{c}:{o.value}" for c, o, _, _ in sort))


@functools.lru_cache(maxsize=1024)
def _fingerprint(spec: str) -> str:
    return hashlib.sha1(spec.encode()).hexdigest()[:8]


def encode_cursor(sort: Sequence[SortKey], row: Mapping[str, Any]) -> str:
    values = []
    for column, _, _, kind in sort:
        v = row[column]
        values.append(v.isoformat() if kind == "ts" and v is not None else v)
    payload = {"s": sort_fingerprint(sort), "k": values, "id": row["id"]}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sequence[SortKey]) -> tuple[list[Any], str]:
    """The sort values and id a cursor resumes after; 422 if it is not one of ours."""
    bad = BadParameter(
        "cursor: not a cursor from this search (use nextCursor with the same sortBy/sortOrder)",
        [{"in": "query", "name": "cursor", "reason": "invalid cursor"}],
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise bad from None  # RecursionError: a forged cursor of deeply nested arrays
    if (
        not isinstance(payload, dict)
        or payload.get("s") != sort_fingerprint(sort)
        or not isinstance(payload.get("id"), str)
        or not isinstance(payload.get("k"), list)
        or len(payload["k"]) != len(sort)
    ):
        raise bad
    if not storable(payload["id"]):
        raise bad
    values: list[Any] = []
    for value, (column, _, nullable, kind) in zip(payload["k"], sort, strict=True):
        if value is None:
            if not nullable:
                raise bad
            values.append(None)
        elif kind == "ts" and isinstance(value, str):
            try:
                instant = datetime.fromisoformat(value)
                if not EARLIEST <= instant.astimezone(UTC) <= LATEST:
                    raise bad
            except (ValueError, OverflowError):
                raise bad from None
            values.append(instant)
        elif (
            kind == "int"
            and type(value) is int
            and -_INT_LIMIT[column] <= value < _INT_LIMIT[column]
        ) or (kind == "text" and isinstance(value, str) and storable(value)):
            values.append(value)
        else:
            raise bad
    return values, payload["id"]


# A cursor is the client's to tamper with: its values must fit their columns' types.
_INT_LIMIT = {"duration_ms": 2**63, "priority": 2**31, "attempts": 2**31}


def keyset_condition(sql: Sql, sort: Sequence[SortKey], values: list[Any], last_id: str) -> str:
    """Rows strictly after (values, last_id) in the ORDER BY of ``order_by``."""
    tie_op = ">" if sort[-1][1] is SortOrder.ASC else "<"
    directions = {o for _, o, _, _ in sort}
    if len(directions) == 1 and not any(n for _, _, n, _ in sort):
        # One direction, no NULLs: a row comparison the composite indexes serve directly.
        cols = ", ".join(c for c, _, _, _ in sort)
        binds = ", ".join(sql.bind(v) for v in values)
        return f"(({cols}, id) {tie_op} ({binds}, {sql.bind(last_id)}))"
    ors: list[str] = []
    equal: list[str] = []
    for (column, order, _, _), value in zip(sort, values, strict=True):
        asc = order is SortOrder.ASC
        if value is None:
            # NULL is the lowest value: after it come all non-NULLs (asc), nothing (desc).
            after = f"{column} IS NOT NULL" if asc else None
            same = f"{column} IS NULL"
        else:
            p = sql.bind(value)
            after = f"{column} > {p}" if asc else f"({column} < {p} OR {column} IS NULL)"
            same = f"{column} = {p}"
        if after is not None:
            ors.append("(" + " AND ".join([*equal, after]) + ")")
        equal.append(same)
    ors.append("(" + " AND ".join([*equal, f"id {tie_op} {sql.bind(last_id)}"]) + ")")
    return "(" + " OR ".join(ors) + ")"


# How far apart any two times of one job of the queues lie at most, read in the page's
# own snapshot, in which every job visible is within its span; NULL (not known) leaves a
# bound open.
MAX_LAG = f"(SELECT {SPANS_LAG_MS} * interval '1 millisecond' FROM job_spans{{where}})"


def creation_bounds(sql: Sql, q: SearchQuery, queues: set[str] | None) -> list[str]:
    """A range of startedAt or finishedAt sorted by createdAt: every match was created
    within the range widened by the lag, so the page's walk starts there rather than at
    the far end of the history. Conditions for the page only: the planner cannot know the
    lag, so the total's estimate is left without them."""
    if not q.dated or DATE_COLUMNS[q.date_field] == "created_at":
        return []
    if q.sort_keys()[0][0] is not SortField.CREATED_AT:
        return []
    where = "" if queues is None else f" WHERE queue = ANY({sql.bind(sorted(queues))}::text[])"
    lag = MAX_LAG.format(where=where)
    bounds = []
    if q.start_date is not None:
        start = sql.bind(q.start_date)
        bounds.append(f"created_at >= coalesce({start}::timestamptz - {lag}, '-infinity')")
    if q.end_date is not None:
        end = sql.bind(q.end_date)
        bounds.append(f"created_at < coalesce({end}::timestamptz + {lag}, 'infinity')")
    return bounds


def restriction(q: SearchQuery, queues: set[str] | None) -> Restriction:
    term = None if q.search is None else search_term(q.search)
    return Restriction(
        queues=None if queues is None else tuple(sorted(queues)),
        name_like=None if term is None else like_pattern(term),
        job_id=term,
        date_column=DATE_COLUMNS[q.date_field] if q.dated else None,
        after=None if q.start_date is None else q.start_date.timestamp(),
        before=None if q.end_date is None else q.end_date.timestamp(),
    )


def plan_search(
    q: SearchQuery, visible_queues: frozenset[str] | None, exact_total_max: int = EXACT_TOTAL_MAX
) -> SearchPlan:
    """The page query and the count query for ``q``, limited to the caller's queues."""
    sql = Sql()
    cond = sql.conditions
    empty = filter_jobs(sql, q, visible_queues)
    queues = set(q.queues) if q.queues else None
    if visible_queues is not None:
        queues = set(visible_queues) if queues is None else queues & visible_queues
    simple = (
        len(queues or ()) <= 1
        and len(q.status or ()) <= 1
        and not q.search
        and q.start_date is None
        and q.end_date is None
        and q.min_duration is None
        and q.max_duration is None
        and q.priority is None
        and q.min_priority is None
        and q.max_priority is None
        and [f for f, _ in q.sort_keys()] == [SortField.CREATED_AT]
    )
    count_where, count_args = sql.where(), list(sql.args)
    matches = " AND ".join(sql.conditions) or "true"
    estimate_args = list(sql.args)
    cond.extend(creation_bounds(sql, q, queues))
    sort = sort_spec(q)
    if q.cursor is not None:
        values, last_id = decode_cursor(q.cursor, sort)
        cond.append(keyset_condition(sql, sort, values, last_id))
    offset = q.offset if q.offset is not None else ((q.page or 1) - 1) * q.limit
    if q.cursor is not None:
        offset = 0
    simple = simple and offset <= SIMPLE_MAX_OFFSET
    columns = SUMMARY_COLUMNS + (DATA_COLUMNS if q.include_data else "")
    page_sql = (
        f"SELECT {columns} FROM jobs{sql.where()}{order_by(sort)}"
        f" LIMIT {sql.bind(q.limit)} OFFSET {sql.bind(offset)}"
    )
    count_args.append((exact_total_max if q.exact_total else COUNT_CAP) + 1)
    count_sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM jobs{count_where} LIMIT ${len(count_args)}) capped"
    )
    return SearchPlan(
        sql=page_sql,
        args=sql.args,
        count_sql=count_sql,
        count_args=count_args,
        estimate_sql=f"SELECT 1 FROM jobs{count_where}",
        estimate_args=estimate_args,
        matches=matches,
        sort=sort,
        offset=offset,
        limit=q.limit,
        count_cap=COUNT_CAP,
        estimate_trusted=ESTIMATE_TRUSTED,
        count_budget_s=COUNT_BUDGET_S,
        count_cost_limit=COUNT_COST_LIMIT,
        empty=empty,
        simple=simple,
        restriction=restriction(q, queues),
        exact_total_max=exact_total_max,
    )
