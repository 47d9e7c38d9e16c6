"""Routes declared once, on pydantic models, for validation and for the OpenAPI document.

``ApiRoutes.route`` records an ``Endpoint`` (method, path, role, query/body/response
models, examples) and wraps the handler so that the query string and JSON body are
parsed into those models before the handler runs, and its returned model is written
back as JSON by alias (camelCase). ``openapi.py`` reads the same ``Endpoint``s, so the
spec cannot drift from what the code accepts. aiohttp-pydantic does the same but emits
OpenAPI 3.0 only and loads Swagger UI from a CDN, hence this small layer of our own.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from aiohttp import web
from jobdeck.auth import Principal, Role
from jobdeck.web import problem, request_id
from pydantic import BaseModel, ValidationError

from jobdeck_api.errors import ApiError, BadParameter, Forbidden, Unavailable, parameter_errors
from jobdeck_api.limits import LIMITS

log = logging.getLogger(__name__)

Q = TypeVar("Q", bound=BaseModel | None)
B = TypeVar("B", bound=BaseModel | None)

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
# Bounds on what a body may be, checked before anything is stored: every document the API
# accepts can be served back (pydantic refuses to serialize past ~255 levels) and fits
# Postgres jsonb. The ingress has the same body limit (deploy/nginx).
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
PATH_PARAM = re.compile(r"{(\w+)}")


class Bucket:
    """Rate-limit buckets: ordinary calls, and the costlier bulk operations."""

    DEFAULT = "default"
    BULK = "bulk"


@dataclass
class ApiRequest(Generic[Q, B]):
    """What a handler receives: the validated query and body, the caller, the raw request."""

    request: web.Request
    principal: Principal
    query: Q
    body: B

    @property
    def app(self) -> web.Application:
        return self.request.app

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    @property
    def request_id(self) -> str:
        return request_id(self.request)


Handler = Callable[[ApiRequest[Any, Any]], Awaitable[BaseModel | web.StreamResponse]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: list[str]
    role: Role | None = Role.VIEWER
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses answering the same response model
    bucket: str = Bucket.DEFAULT
    errors: tuple[int, ...] = ()
    description: str = ""
    body_example: Any = None
    response_example: Any = None
    operation_id: str = ""
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def path_names(self) -> list[str]:
        return PATH_PARAM.findall(self.path)


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return origin in (list, set, frozenset, tuple)


@functools.cache
def list_fields(model: type[BaseModel]) -> frozenset[str]:
    """Public names of the query fields that take many values."""
    fields = model.model_fields.items()
    return frozenset((info.alias or name) for name, info in fields if _is_list(info.annotation))


@functools.cache
def known_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset((info.alias or name) for name, info in model.model_fields.items())


def raw_query(request: web.Request, model: type[BaseModel]) -> dict[str, Any]:
    """The query string as the model expects it.

    A list parameter may come as ``status=a&status=b``, ``status[]=a&status[]=b`` or
    ``status=a,b``; a scalar given twice is refused rather than silently picking one.
    """
    many = list_fields(model)
    known = known_fields(model)
    out: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for key in dict.fromkeys(request.query.keys()):
        name = key[:-2] if key.endswith("[]") else key
        if name not in known:
            if not key.startswith("_"):
                errors.append({"in": "query", "name": key, "reason": "unknown parameter"})
            continue
        values = request.query.getall(key)
        if not all(storable(v) for v in values):
            raise _unstorable("query", key)
        if name in many:
            parts = [p.strip() for v in values for p in v.split(",") if p.strip()]
            out.setdefault(name, []).extend(parts)
        elif len(values) > 1 or key != name:
            errors.append({"in": "query", "name": key, "reason": "takes a single value"})
        else:
            out[name] = values[0]
    if errors:
        summary = "; ".join(f"{e['name']}: {e['reason']}" for e in errors)
        raise BadParameter(f"invalid query parameter(s): {summary}", errors)
    return out


def storable(text: str) -> bool:
    """Postgres text and jsonb hold neither NUL characters nor unpaired surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Only a \u0000 or \uD800-\uDFFF escape can put NUL or a lone surrogate into parsed JSON
# (raw control bytes and invalid UTF-8 fail to parse): walk the document only then.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _storable_json(value: Any) -> bool:
    """Every string (keys included) in a parsed JSON document is ``storable``."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(storable(k) and _storable_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable_json(v) for v in value)
    return True


def _unstorable(where: str, name: str) -> BadParameter:
    return BadParameter(
        f"{name}: contains a NUL character or an unpaired surrogate, which cannot be stored",
        [{"in": where, "name": name, "reason": "NUL or unpaired surrogate"}],
    )


def too_deep(value: Any, limit: int) -> str | None:
    """The path of the first value nested deeper than ``limit`` levels, or None.

    Iterative: the document may be as deep as the parser allowed."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return path or "body"
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                stack.append((child, depth + 1, f"{path}.{key}" if path else str(key)))
    return None


def _too_deep(path: str) -> BadParameter:
    name = ".".join(path.split(".")[:4])
    return BadParameter(
        f"{name}: nested more than {MAX_JSON_DEPTH} levels deep",
        [{"in": "body", "name": name, "reason": f"at most {MAX_JSON_DEPTH} levels of nesting"}],
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise BadParameter(f"body larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise BadParameter(
            "a JSON body is required", [{"in": "body", "name": "body", "reason": "missing"}]
        )
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep("body") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadParameter(
            f"body is not valid JSON: {exc}", [{"in": "body", "name": "body", "reason": "not JSON"}]
        ) from exc
    deep = too_deep(data, MAX_JSON_DEPTH)
    if deep is not None:
        raise _too_deep(deep)
    if _SUSPECT_ESCAPE.search(raw) and not _storable_json(data):
        raise _unstorable("body", "body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise parameter_errors(exc, "body") from exc


def error_response(request: web.Request, exc: ApiError) -> web.Response:
    response = problem(exc.status, exc.detail, request_id=request_id(request), **exc.extra)
    if isinstance(exc, Unavailable):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def timed_out(request: web.Request) -> Unavailable:
    """A statement cancelled by the API's statement timeout, as a 503 that says what to do."""
    limit = request.app[LIMITS].statement_timeout_ms
    return Unavailable(
        f"the database did not answer within the API's statement timeout ({limit} ms);"
        " ask for less: narrow the filters (queues, status, a startDate/endDate range), sort by"
        " createdAt, drop exactTotal, or page with nextCursor, then retry",
        retry_after_s=max(1, limit // 1000),
        hint="narrow the request",
    )


AuditHook = Callable[[ApiRequest[Any, Any], Endpoint], Awaitable[None]]
DENIED_HOOK: web.AppKey[AuditHook] = web.AppKey("denied_hook")


class ApiRoutes:
    """Collects the endpoints of the API; ``install`` adds them to an aiohttp app."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str, **options: Any) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            doc = (handler.__doc__ or "").strip()
            summary, _, rest = doc.partition("\n")
            options.setdefault("summary", summary.strip())
            options.setdefault("description", rest.strip())
            options.setdefault("operation_id", handler.__name__)
            self.endpoints.append(Endpoint(method=method, path=path, handler=handler, **options))
            return handler

        return decorate

    def install(self, app: web.Application) -> None:
        for ep in self.endpoints:
            app.router.add_route(ep.method, ep.path, _wrap(ep))


def _wrap(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal: Principal = request[PRINCIPAL_KEY]
        call: ApiRequest[Any, Any] = ApiRequest(request, principal, None, None)
        try:
            if ep.role is not None and not principal.has_role(ep.role):
                hook = request.app.get(DENIED_HOOK)
                if hook is not None and ep.method != "GET":
                    await hook(call, ep)
                raise Forbidden(
                    f"role {principal.role.name.lower()} may not {ep.summary.lower() or 'do this'};"
                    f" it needs {ep.role.name.lower()}"
                )
            for name in ep.path_names:
                value = request.match_info.get(name, "")
                if not storable(value):
                    raise _unstorable("path", name)
                if not value or len(value) > 256:
                    raise BadParameter(
                        f"path parameter {name!r} must be 1 to 256 characters",
                        [{"in": "path", "name": name, "reason": "1 to 256 characters"}],
                    )
            if ep.query is not None:
                try:
                    call.query = ep.query.model_validate(raw_query(request, ep.query))
                except ValidationError as exc:
                    raise parameter_errors(exc, "query") from exc
            if ep.body is not None:
                call.body = await _parse_body(request, ep.body)
            result = await ep.handler(call)
        except ApiError as exc:
            response: web.StreamResponse = error_response(request, exc)
        except asyncpg.QueryCanceledError:
            response = error_response(request, timed_out(request))
        else:
            if isinstance(result, web.StreamResponse):
                response = result
            else:
                response = web.Response(
                    text=result.model_dump_json(by_alias=True),
                    status=ep.status,
                    content_type="application/json",
                )
        # The id the audit log and error bodies carry, for a client to quote.
        response.headers["X-Request-Id"] = request_id(request)
        return response

    handle.endpoint = ep  # type: ignore[attr-defined]
    handle.__name__ = ep.operation_id
    return handle


def endpoint_of(request: web.Request) -> Endpoint | None:
    handler = request.match_info.handler
    return getattr(handler, "endpoint", None)
