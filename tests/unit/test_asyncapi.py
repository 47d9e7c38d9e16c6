"""The AsyncAPI 3.0 document: generated from proto/, valid AsyncAPI, and true to the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from jobdeck_api.asyncapi import VERSION, build_asyncapi, generate, served_document
from jobdeck_gateway.stats import QueueSnapshot, queue_stats_payload

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "socketio.schema.json"
# The AsyncAPI Initiative's own JSON Schema of the 3.0.0 spec (npm @asyncapi/specs).
SPEC = ROOT / "tests/node/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"


def test_the_served_document_is_a_fresh_generation_from_proto() -> None:
    shipped = (ROOT / "services/api/src/jobdeck_api/asyncapi.json").read_text()
    assert shipped == generate(PROTO, VERSION), (
        "proto/ changed: run python -m jobdeck_api.asyncapi proto/socketio.schema.json"
        " > services/api/src/jobdeck_api/asyncapi.json"
    )


def test_the_document_is_valid_asyncapi_3() -> None:
    doc = served_document()
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"
    unresolved = [ref for ref in _refs(doc) if _resolve(doc, ref) is None]
    assert unresolved == []


def test_every_event_and_message_of_proto_has_its_operation() -> None:
    proto = json.loads(PROTO.read_text())
    doc = build_asyncapi(proto, VERSION)
    sent = {op["messages"][0]["$ref"].rsplit("/", 1)[1] for op in _ops(doc, "send")}
    received = {op["messages"][0]["$ref"].rsplit("/", 1)[1] for op in _ops(doc, "receive")}
    assert sent == set(proto["x-server-events"])
    assert received == set(proto["x-client-messages"])
    assert all(op["reply"]["messages"] for op in _ops(doc, "receive"))


def test_a_real_payload_validates_against_its_asyncapi_message() -> None:
    doc = served_document()
    payload = queue_stats_payload("emails", QueueSnapshot(waiting=3, active=1), 1_700_000_000_000)
    schema_ref = doc["components"]["messages"]["queueStats"]["payload"]["$ref"]
    jsonschema.validate(payload, {"$ref": schema_ref, "components": doc["components"]})
    broken = {**payload, "waiting": "three"}
    try:
        jsonschema.validate(broken, {"$ref": schema_ref, "components": doc["components"]})
    except jsonschema.ValidationError:
        return
    raise AssertionError("a wrong payload passed")


def _ops(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [op for op in doc["operations"].values() if op["action"] == action]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
