"""The OpenAPI 3.1 document, generated from the routes' own pydantic models, and an
offline Swagger UI (assets from the ``swagger-ui-bundle-v2`` package, no CDN).

Pydantic emits JSON Schema 2020-12, which is what OpenAPI 3.1 uses, so schemas go in
unchanged; each model's ``$defs`` are hoisted into ``components/schemas``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from jobdeck_api.models import Problem
from jobdeck_api.routing import Endpoint

REF = "#/components/schemas/{model}"
DOCS_PATH = "/api/docs"
SPEC_PATH = "/api/docs/openapi.json"
# 503: a statement past the API's statement timeout, or no slot for a costly search.
COMMON_ERRORS = (401, 422, 429, 503)


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        """A $ref to ``model`` (validation schema for inputs, serialization for outputs)."""
        schema = model.model_json_schema(by_alias=True, ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, sub in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, sub)
        name = schema.get("title", model.__name__)
        if mode == "serialization" and name in self.schemas and self.schemas[name] != schema:
            name = f"{name}Output"
        self.schemas[name] = schema
        return {"$ref": REF.format(model=name)}


def _parameters(ep: Endpoint, components: _Components) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
            "description": ep.path_params.get(name, ""),
        }
        for name in ep.path_names
    ]
    if ep.query is None:
        return params
    schema = ep.query.model_json_schema(by_alias=True, ref_template=REF)
    for name, sub in schema.pop("$defs", {}).items():
        components.schemas.setdefault(name, sub)
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(copy.deepcopy(prop))
        description = prop.pop("description", "")
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        if _is_array(prop):
            param["style"] = "form"
            param["explode"] = True
        params.append(param)
    return params


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An absent query parameter is the "null" of its model field: document only the type
    it takes when given (``string``, not ``string | null`` with a null default)."""
    any_of = prop.get("anyOf")
    if isinstance(any_of, list):
        rest = [s for s in any_of if s.get("type") != "null"]
        if len(rest) == 1 and len(rest) < len(any_of):
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            prop = {**rest[0], **merged}
    if "default" in prop and prop["default"] is None:
        del prop["default"]
    return prop


def _is_array(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(s.get("type") == "array" for s in schema.get("anyOf", []))


def _problem_responses(codes: Iterable[int], problem_ref: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for code in sorted(set(codes)):
        out[str(code)] = {
            "description": HTTPStatus(code).phrase,
            "content": {"application/problem+json": {"schema": problem_ref}},
        }
        if code == 429:
            out[str(code)]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
            }
        if code == 401:
            out[str(code)]["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
            }
    return out


def build_openapi(endpoints: Iterable[Endpoint], version: str = "1.0.0") -> dict[str, Any]:
    components = _Components()
    problem_ref = components.add(Problem, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "operationId": ep.operation_id,
            "summary": ep.summary,
            "tags": ep.tags,
            "parameters": _parameters(ep, components),
        }
        if ep.description:
            op["description"] = ep.description
        if ep.body is not None:
            media: dict[str, Any] = {"schema": components.add(ep.body, "validation")}
            if ep.body_example is not None:
                media["example"] = ep.body_example
            op["requestBody"] = {"required": True, "content": {"application/json": media}}
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": HTTPStatus(ep.status).phrase}
        if ep.response is not None:
            media = {"schema": components.add(ep.response, "serialization")}
            if ep.response_example is not None:
                media["example"] = ep.response_example
            ok["content"] = {"application/json": media}
        responses[str(ep.status)] = ok
        for code in ep.also:
            responses[str(code)] = {**ok, "description": HTTPStatus(code).phrase}
        codes = set(COMMON_ERRORS) | set(ep.errors)
        if ep.role is not None and ep.role.value > 1:
            codes.add(403)
        responses.update(_problem_responses(codes, problem_ref))
        op["responses"] = responses
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobdeck API",
            "version": version,
            "description": (
                "Query and command API of jobdeck: search jobs, read details and logs, "
                "enqueue, retry and cancel (one or in bulk), pause and configure queues. "
                "Every call needs a JWT bearer token (`jobdeck token` mints one); what a "
                "caller sees is limited to the queues in its token. Errors are RFC 9457 "
                "problem details."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "jobs", "description": "Search, inspect, enqueue, retry and cancel jobs"},
            {"name": "queues", "description": "Queue state, pause/resume and configs"},
            {"name": "audit", "description": "Who changed what (admins)"},
            {"name": "system", "description": "The event pipeline's state (admins)"},
        ],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def swagger_assets() -> Path:
    import swagger_ui_bundle

    return Path(str(swagger_ui_bundle.swagger_ui_path))


# Swagger UI's defaults, changed deliberately: ``validatorUrl: null`` (else the browser
# sends the spec's URL to validator.swagger.io on any host but localhost) and
# ``persistAuthorization: false`` (else the bearer token stays in localStorage, readable
# by any script on the origin and left behind on shared machines; a reload asks again).
# The page's CSP allows nothing but this origin.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

INDEX_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>jobdeck API</title>
  <link rel="stylesheet" href="{base}/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="{base}/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{base}/assets/swagger-ui-bundle.js"></script>
  <script src="{base}/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      persistAuthorization: false,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


def install_docs(app: web.Application, endpoints: Iterable[Endpoint]) -> None:
    """Serves the OpenAPI document (built at its first request: 0.5 s of pydantic work that
    most processes and tests never need) and the offline Swagger UI."""
    endpoints = tuple(endpoints)
    document: dict[str, Any] = {}

    async def spec(request: web.Request) -> web.Response:
        if not document:
            document.update(build_openapi(endpoints))
        return web.json_response(document)

    index = INDEX_HTML.format(base=DOCS_PATH, spec=SPEC_PATH)

    async def ui(request: web.Request) -> web.Response:
        return web.Response(text=index, content_type="text/html", headers=DOCS_HEADERS)

    app.router.add_get(SPEC_PATH, spec)
    app.router.add_get(DOCS_PATH, ui)
    app.router.add_get(DOCS_PATH + "/", ui)
    app.router.add_static(DOCS_PATH + "/assets", swagger_assets(), append_version=False)
