"""Rows that belong to a queue (job templates, schedules), read as the caller's token allows:
a page of them, or one of them; a row of a queue outside the token does not exist for the
caller (404), so that the API does not tell which ids exist elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from jobdeck.auth import Principal
from jobdeck.web import PG

from jobdeck_api.errors import NotFound
from jobdeck_api.models import Model
from jobdeck_api.routing import ApiRequest

Row = Mapping[str, Any]
PageT = TypeVar("PageT", bound=Model)


def scope(call: ApiRequest[Any, Any]) -> list[str] | None:
    """The queues the caller may see, for SQL (None: all of them)."""
    queues = call.principal.queues
    return None if queues is None else sorted(queues)


def visible(principal: Principal, queue: str | None) -> bool:
    """A row without a queue (a schedule whose template was deleted with force) is seen by
    all-queue tokens only."""
    if queue is None:
        return principal.queues is None
    return principal.can_see(queue)


async def fetch_page(
    call: ApiRequest[Any, Any],
    sql: str,
    filters: Sequence[Any],
    page: Callable[..., PageT],
    item: Callable[[Row], Model],
) -> PageT:
    """One page of a list query that takes the caller's scope, ``filters``, then the
    query's limit and offset, and counts all its matches in a ``total`` column."""
    q = call.query
    rows = await call.app[PG].fetch(sql, scope(call), *filters, q.limit, q.offset)
    total = rows[0]["total"] if rows else 0
    items = [item(r) for r in rows if visible(call.principal, r["queue"])]
    return page(items=items, total=total, limit=q.limit, offset=q.offset)


async def fetch_visible(
    db: Any, call: ApiRequest[Any, Any], kind: str, sql: str, row_id: str
) -> Row:
    """The row of ``row_id`` (``sql`` takes it as $1) if the caller may see it, else 404."""
    row: Row | None = await db.fetchrow(sql, row_id)
    if row is None or not visible(call.principal, row["queue"]):
        raise NotFound(f"{kind} {row_id!r} not found")
    return row
