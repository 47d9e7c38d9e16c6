"""One token check for HTTP and socket: hostile claims from a valid signer, audience and
issuer, and an identity provider's JWKS (served by a local aiohttp server) with rotation."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jobdeck.auth import mint_token
from jobdeck.settings import Settings
from jobdeck_api.app import build_app
from jobdeck_api.security import RateLimits

from tests.support.api import SECRET
from tests.support.gateway import Listener, running_gateway

AUDIENCE = "jobdeck"
ISSUER = "https://idp.test"
SEARCH = "/api/v1/jobs/search"


def hostile(**claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "mallory", "roles": ["viewer"], "queues": "*", "iat": now, "exp": now + 600}
    body.update(claims)
    return jwt.encode(body, SECRET, algorithm="HS256")


# Minted when a test runs (not at import: a long suite would see them expire first).
HOSTILE: dict[str, Any] = {
    "exp as a string": lambda now: {"exp": str(now + 600)},
    "exp = 10**400": lambda now: {"exp": 10**400},
    "dotless-i admin": lambda now: {"roles": ["adm\u0131n"]},
    "roles as a string": lambda now: {"roles": "admin"},
    "nbf as a string": lambda now: {"nbf": "0"},
}


def hostile_token(name: str) -> str:
    return hostile(**HOSTILE[name](int(time.time())))


@pytest.fixture
async def api_client(api_settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(api_settings, RateLimits(enabled=False)))) as c:
        yield c


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_the_api_refuses_malformed_claims_with_401(api_client: TestClient, name: str) -> None:
    resp = await api_client.get(SEARCH, headers={"Authorization": f"Bearer {hostile_token(name)}"})
    assert resp.status == 401, name
    body = await resp.json()
    assert body["status"] == 401 and "token" in body["detail"]


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_the_gateway_refuses_malformed_claims_with_a_reason(
    api_settings: Settings, name: str
) -> None:
    async with running_gateway(api_settings) as gw:
        listener = Listener()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await listener.connect(gw.url, {"token": hostile_token(name)})
        await listener.close()
        assert listener.connect_error["data"]["reason"] == "invalid_token"


class IdentityProvider:
    """A JWKS endpoint with keys that can be rotated, and a count of fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.url = ""

    def rotate(self, kid: str) -> None:
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        # A symmetric key in the set must never be used to check a signature.
        keys.append({"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"})
        return web.json_response({"keys": keys})

    def token(self, kid: str, key: Any = None, **over: Any) -> str:
        return mint_token(
            key or self.keys[kid],
            over.pop("sub", "idp-user"),
            over.pop("roles", ["operator"]),
            algorithm=over.pop("algorithm", "RS256"),
            audience=over.pop("audience", AUDIENCE),
            issuer=over.pop("issuer", ISSUER),
            kid=kid,
        )


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.rotate("k1")
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", provider.jwks)
    async with TestServer(app) as server:
        provider.url = str(server.make_url("/.well-known/jwks.json"))
        yield provider


@pytest.fixture
def jwks_settings(api_settings: Settings, idp: IdentityProvider) -> Settings:
    return dataclasses.replace(
        api_settings,
        jwt_jwks_url=idp.url,
        jwt_jwks_refresh_s=0,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )


async def test_api_uses_the_providers_jwks_cached_and_rotated_by_kid(
    jwks_settings: Settings, idp: IdentityProvider
) -> None:
    async with TestClient(
        TestServer(build_app(jwks_settings, RateLimits(enabled=False)))
    ) as client:

        async def status(token: str) -> int:
            resp = await client.get(SEARCH, headers={"Authorization": f"Bearer {token}"})
            return resp.status

        assert await status(idp.token("k1")) == 200
        assert await status(idp.token("k1", sub="other")) == 200
        assert idp.fetches == 1  # cached: one fetch for both tokens
        old = idp.keys["k1"]
        idp.rotate("k2")
        assert await status(idp.token("k2")) == 200  # unknown kid: refetched once
        assert idp.fetches == 2
        assert await status(idp.token("k1", key=old, sub="late")) == 401  # retired key
        assert await status(idp.token("k2", audience="billing")) == 401
        assert await status(idp.token("k2", issuer="https://evil.test")) == 401
        forged = jwt.encode(
            {"sub": "x", "roles": ["admin"], "exp": time.time() + 60, "aud": AUDIENCE},
            "secret-secret-secret-secret-secret-secret",
            algorithm="HS256",
            headers={"kid": "shared"},
        )
        assert await status(forged) == 401


async def test_the_gateway_uses_the_same_jwks_path(
    jwks_settings: Settings, idp: IdentityProvider
) -> None:
    async with running_gateway(jwks_settings) as gw:
        listener = Listener()
        await listener.connect(gw.url, {"token": idp.token("k1")})
        hello = await listener.wait("connected")
        assert hello["sub"] == "idp-user" and hello["role"] == "operator"
        await listener.close()
        refused = Listener()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(gw.url, {"token": idp.token("k1", audience="billing")})
        await refused.close()
        assert refused.connect_error["data"]["reason"] == "invalid_token"
