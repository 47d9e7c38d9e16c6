"""API errors: one root exception, and the mapping of each failure to problem details.

Handlers raise these; the route layer turns them into RFC 9457 responses, so no handler
builds an error body by hand and no driver error reaches a client as a 500.
"""

from __future__ import annotations

from typing import Any

from jobdeck import JobdeckError
from pydantic import ValidationError


class ApiError(JobdeckError):
    """The request could not be served."""

    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadParameter(ApiError):
    """A parameter is missing or invalid."""

    status = 422

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class NotFound(ApiError):
    """No such resource, or not one the caller may see."""

    status = 404


class Forbidden(ApiError):
    """The caller's role may not do this."""

    status = 403


class Conflict(ApiError):
    """The resource's current state forbids this."""

    status = 409


class Unavailable(ApiError):
    """A backend (Redis, Postgres) could not serve this request now: retry later (after
    ``retry_after_s``), or ask for less."""

    status = 503

    def __init__(self, detail: str, retry_after_s: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s


def parameter_errors(exc: ValidationError, location: str) -> BadParameter:
    """A 422 naming each bad parameter (by its public alias) and why it is bad."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int) or p >= 0]
        name = ".".join(loc) if loc else location
        reason = str(err.get("msg", "invalid"))
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        errors.append({"in": location, "name": name, "reason": reason})
    summary = "; ".join(f"{e['name']}: {e['reason']}" for e in errors[:5])
    return BadParameter(f"invalid {location} parameter(s): {summary}", errors)
