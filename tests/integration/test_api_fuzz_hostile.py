"""Every endpoint against a depth/size-hostile generator (schemathesis covers what the
schema describes; this covers what it does not): deep nesting, huge strings and arrays,
numbers JSON cannot carry back, forged cursors and long query strings. Whatever arrives,
the answer is never a 5xx, always problem JSON when it is an error, and what is accepted
can be read back."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobdeck_api.app import all_endpoints
from jobdeck_api.routing import MAX_JSON_DEPTH
from pydantic_core import to_json

from tests.support.api import auth

ENDPOINTS = all_endpoints()
WITH_BODY = [ep for ep in ENDPOINTS if ep.body is not None]
WITH_QUERY = [ep for ep in ENDPOINTS if ep.query is not None]


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", "fuzz-x", path)


def deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "array" else ('{"a":' * depth + "1" + "}" * depth)


def hostile_bodies() -> Iterator[tuple[str, bytes]]:
    for depth in (33, 100, 1000, 20_000):
        for kind in ("array", "object"):
            yield f"{kind} nested {depth}", deep(depth, kind).encode()
            yield (
                f"data {kind} nested {depth}",
                (b'{"queue":"q","name":"t","data":' + deep(depth, kind).encode() + b"}"),
            )
    yield "1.5 MiB string", b'{"queue":"q","name":"t","data":"' + b"x" * 1_500_000 + b'"}'
    yield "100k-element array", b'{"jobIds":[' + b",".join([b'"a"'] * 100_000) + b"]}"
    for number in (b"1e400", b"NaN", b"-Infinity", b"9" * 5000):
        yield f"number {number[:10]!r}", b'{"queue":"q","name":"t","data":' + number + b"}"
    yield "lone surrogate", b'{"queue":"q","name":"\\ud800"}'
    yield "NUL", b'{"queue":"q","name":"t","data":"\\u0000"}'
    yield "not UTF-8", b'{"queue":"\xff"}'


def json_nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def json_values(max_leaves: int = 50) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=max_leaves,
    )


async def check(resp: Any, what: str) -> None:
    assert resp.status < 500, f"{what}: {resp.status} {await resp.text()}"
    if resp.status >= 400:
        assert resp.headers["Content-Type"].startswith("application/problem+json"), what


@pytest.mark.parametrize("ep", WITH_BODY, ids=lambda ep: f"{ep.method} {ep.path}")
async def test_hostile_bodies_never_make_a_5xx(api: TestClient, ep: Any) -> None:
    for what, body in hostile_bodies():
        resp = await api.request(
            ep.method, concrete(ep.path), data=io.BytesIO(body), headers=auth("admin")
        )
        await check(resp, f"{ep.method} {ep.path} {what}")


@pytest.mark.parametrize("ep", WITH_QUERY, ids=lambda ep: f"{ep.method} {ep.path}")
async def test_hostile_query_strings_never_make_a_5xx(api: TestClient, ep: Any) -> None:
    forged = [
        base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("="),
        base64.urlsafe_b64encode(b'{"s":"x","k":[' + b"[" * 700 + b"]" * 700 + b'],"id":"a"}')
        .decode()
        .rstrip("="),
        "A" * 2048,
    ]
    for cursor in forged:
        resp = await api.get(concrete(ep.path), params={"cursor": cursor}, headers=auth())
        await check(resp, f"{ep.path} cursor")
    long_list = ",".join(f"queue-{i:03d}-" + "x" * 90 for i in range(100))
    resp = await api.get(concrete(ep.path), params={"queues": long_list}, headers=auth())
    await check(resp, f"{ep.path} 100 long queue names")


async def test_whatever_json_is_enqueued_can_be_read_back(api: TestClient) -> None:
    seen: list[Any] = []

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=json_values())
    def generate(data: Any) -> None:
        seen.append(data)

    generate()
    seen.append(json_nested(MAX_JSON_DEPTH - 2))
    for n, data in enumerate(seen):
        body = {"queue": "fuzz", "name": "t", "jobId": f"fuzz-{n}", "data": data}
        resp = await api.post("/api/v1/jobs", json=body, headers=auth("operator"))
        await check(resp, f"enqueue {data!r:.80}")
        if resp.status == 201:  # what job detail and search will serialize
            to_json(data)
