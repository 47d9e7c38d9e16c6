"""The scheduler's ``alert`` meets both contracts: the stream's and, once the gateway maps
it, the Socket.IO event clients receive."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import msgpack
from jobdeck.events import decode, encode
from jobdeck_gateway.protocol import SocketEvent, outgoing
from jobdeck_scheduler.outcomes import alert_event

PROTO = Path(__file__).resolve().parents[2] / "proto"


def test_schedule_disabled_alert_is_valid_on_the_stream_and_on_the_socket() -> None:
    row = {
        "id": "abc123",
        "name": "nightly",
        "queue": "reports",
        "consecutive_failures": 5,
        "max_consecutive_failures": 5,
        "disabled_reason": "5 consecutive failed runs (limit 5); last error: disk full",
        "disabled_at": datetime.now(UTC),
    }
    raw = encode(alert_event(row))
    stream_schema = json.loads((PROTO / "events.schema.json").read_text())
    jsonschema.Draft202012Validator(stream_schema).validate(msgpack.unpackb(raw, raw=False))

    out = outgoing(decode(raw), "1-1")
    assert out.to_everyone and out.queue == "reports"
    ((name, payload),) = out.messages
    assert name is SocketEvent.ALERT
    assert payload["kind"] == "schedule_disabled" and "nightly" in payload["message"]
    doc = json.loads((PROTO / "socketio.schema.json").read_text())
    jsonschema.validate(payload, {"$ref": "#/$defs/alert", "$defs": doc["$defs"]})
