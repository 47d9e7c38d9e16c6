"""Strict token checks (``jobdeck.auth``): what a valid signer's token must still satisfy."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt
import pytest
from jobdeck.auth import MAX_NUMERIC_DATE, InvalidToken, Role, TokenVerifier, mint_token
from jobdeck.settings import Settings

SECRET = "unit-test-secret-0123456789abcdef-0123456789"
SETTINGS = Settings(jwt_secret=SECRET)


def signed(**claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "u", "roles": ["viewer"], "queues": "*", "iat": now, "exp": now + 600}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not ...}, SECRET, algorithm="HS256")


async def verify(token: str, settings: Settings = SETTINGS) -> Any:
    return await TokenVerifier(settings).verify(token)


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"exp": str(int(time.time()) + 600)}, "'exp' must be a number"),
        ({"exp": 10**400}, "'exp' is out of range"),
        ({"exp": MAX_NUMERIC_DATE + 1}, "'exp' is out of range"),
        ({"exp": True}, "'exp' must be a number"),
        ({"exp": ...}, "'exp'"),
        ({"nbf": "0"}, "'nbf' must be a number"),
        ({"iat": "0"}, "'iat' must be a number"),
        ({"iat": -1}, "'iat' is out of range"),
        ({"nbf": 4_000_000_000}, "not valid yet"),  # year 2096
        ({"iat": 4_000_000_000}, "issued in the future"),
        ({"roles": "admin"}, "'roles' must be a list"),
        ({"roles": ["adm\u0131n"]}, "holds none of"),  # dotless i: upper() would make ADMIN
        ({"roles": ["ADMIN"]}, "holds none of"),
        ({"roles": []}, "holds none of"),
        ({"roles": [1]}, "'roles' must be a list"),
        ({"queues": "a,b"}, "'queues'"),
        ({"queues": [""]}, "'queues'"),
        ({"sub": ""}, "'sub'"),
        ({"sub": "x" * 300}, "'sub'"),
    ],
)
async def test_a_valid_signature_does_not_excuse_malformed_claims(
    claims: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidToken, match=why):
        await verify(signed(**claims))


async def test_exact_role_names_and_unknown_roles_grant_nothing() -> None:
    principal = await verify(signed(roles=["viewer", "adm\u0131n", "offline_access"]))
    assert principal.role is Role.VIEWER
    assert (await verify(signed(roles=["operator", "admin"]))).role is Role.ADMIN


async def test_expiry_is_a_number_the_socket_timer_can_use() -> None:
    exp = int(time.time()) + 600
    principal = await verify(signed(exp=exp))
    assert principal.expires_at == float(exp)
    with pytest.raises(InvalidToken) as info:
        await verify(signed(exp=int(time.time()) - 3600))
    assert info.value.reason == "token_expired"


async def test_audience_and_issuer_are_checked_when_set() -> None:
    settings = replace(SETTINGS, jwt_audience="jobdeck", jwt_issuer="https://idp.example")
    good = mint_token(SECRET, "u", ["viewer"], audience="jobdeck", issuer="https://idp.example")
    assert (await verify(good, settings)).sub == "u"
    for token, why in (
        (mint_token(SECRET, "u", ["viewer"], issuer="https://idp.example"), "'aud'"),
        (mint_token(SECRET, "u", ["viewer"], audience="jobdeck"), "'iss'"),
        (
            mint_token(SECRET, "u", ["viewer"], audience="billing", issuer="https://idp.example"),
            "audience",
        ),
        (
            mint_token(SECRET, "u", ["viewer"], audience="jobdeck", issuer="https://evil.example"),
            "issuer",
        ),
    ):
        with pytest.raises(InvalidToken, match=why):
            await verify(token, settings)
