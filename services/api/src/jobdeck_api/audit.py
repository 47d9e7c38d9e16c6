"""The audit trail: who changed what, on which targets, with which outcome.

Every state-changing endpoint records one row per request (refused ones too), with the
caller's queue scope, so an operator can answer "who cancelled these jobs?" from
``GET /api/v1/audit``. Rows span every queue (and name jobs, queues and schedules of
any), so reading them takes an admin whose token covers every queue (``"*"``); a
queue-scoped admin is refused rather than shown a filtered log that would still leak
other queues' job ids through shared rows (a bulk action over several queues).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from jobdeck.web import PG

from jobdeck_api.audit_models import AuditEntry, AuditPage, AuditQuery
from jobdeck_api.errors import BadParameter, Forbidden
from jobdeck_api.queries import Q
from jobdeck_api.routing import ApiRequest, Endpoint

log = logging.getLogger(__name__)


class Outcome:
    OK = "ok"
    PARTIAL = "partial"
    REFUSED = "refused"
    DENIED = "denied"


async def record(
    call: ApiRequest[Any, Any],
    action: str,
    targets: Sequence[Any],
    outcome: str,
    detail: Any = None,
) -> None:
    """Write one audit row; a failure to audit is logged, never hidden from the log."""
    p = call.principal
    try:
        await call.app[PG].execute(
            Q["insert_audit"],
            p.sub,
            p.roles,
            action,
            list(targets),
            outcome,
            detail,
            call.request_id,
            p.scope,
        )
    except (OSError, asyncpg.PostgresError):
        log.exception("audit write failed", extra={"action": action, "actor": p.sub})


async def record_denied(call: ApiRequest[Any, Any], ep: Endpoint) -> None:
    targets = [v for k, v in call.request.match_info.items()]
    await record(
        call, ep.operation_id, targets, Outcome.DENIED, {"needed": ep.role and ep.role.name.lower()}
    )


async def audit_page(call: ApiRequest[AuditQuery, None]) -> AuditPage:
    if call.principal.queues is not None:
        raise Forbidden(
            "the audit log covers every queue: reading it needs an admin token for all queues ('*')"
        )
    q = call.query
    before: int | None = None
    if q.cursor is not None:
        if not (q.cursor.isascii() and q.cursor.isdigit() and len(q.cursor) <= 18):
            raise BadParameter(
                "cursor: not a cursor from this endpoint",
                [{"in": "query", "name": "cursor", "reason": "invalid cursor"}],
            )
        before = int(q.cursor)
    rows = await call.app[PG].fetch(
        Q["audit_page"], q.actor, q.action, q.outcome, q.since, q.until, before, q.limit
    )
    items = [
        AuditEntry(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            roles=list(r["roles"]),
            action=r["action"],
            targets=r["targets"],
            outcome=r["outcome"],
            detail=r["detail"],
            request_id=r["request_id"],
            scope=r["scope"],
        )
        for r in rows
    ]
    next_cursor = str(rows[-1]["id"]) if len(rows) == q.limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
