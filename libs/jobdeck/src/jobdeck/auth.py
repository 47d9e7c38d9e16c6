"""JWT bearer tokens and what their claims allow (PyJWT; see LIBRARIES.md for why not aiohttp-jwt).

Claims: ``sub``; ``roles`` (any of viewer < operator < admin, the highest counts);
``queues`` (queue names, or ``"*"`` for all); ``exp`` is required.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import jwt

from jobdeck import JobdeckError
from jobdeck.settings import Settings


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError as exc:
            raise InvalidToken(f"unknown role {name!r}") from exc


class InvalidToken(JobdeckError):
    """The bearer token is missing, expired, badly signed or malformed."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, and which queues it may see."""

    sub: str
    role: Role
    queues: frozenset[str] | None  # None means every queue
    # The token's ``exp`` (epoch seconds), for long-lived sessions (the gateway's sockets)
    # that must end when the token does; None when unknown (principals built by hand).
    expires_at: float | None = None

    @property
    def roles(self) -> list[str]:
        return [r.name.lower() for r in Role if r <= self.role]

    def has_role(self, needed: Role) -> bool:
        return self.role >= needed

    def can_see(self, queue: str) -> bool:
        return self.queues is None or queue in self.queues

    def visible(self, queues: Iterable[str]) -> list[str]:
        return [q for q in queues if self.can_see(q)]


class TokenVerifier:
    """Checks tokens: HS256 with the shared secret, or RS256 when a public key is set."""

    def __init__(self, settings: Settings) -> None:
        if settings.jwt_public_key:
            self._key: str = settings.jwt_public_key
            self._algorithms = ["RS256"]
        else:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        self._leeway = settings.jwt_leeway_s

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise InvalidToken("missing bearer token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                leeway=self._leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("token signature is invalid") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise InvalidToken("token algorithm is not accepted") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"token is invalid: {exc}") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, object]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("token 'sub' must be a non-empty string")
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("token 'roles' must be a non-empty list of role names")
    queues = claims.get("queues", [])
    if queues == "*" or (isinstance(queues, list) and "*" in queues):
        allowed: frozenset[str] | None = None
    elif isinstance(queues, list) and all(isinstance(q, str) for q in queues):
        allowed = frozenset(queues)
    else:
        raise InvalidToken("token 'queues' must be '*' or a list of queue names")
    exp = claims.get("exp")
    expires_at = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    return Principal(
        sub=sub, role=max(Role.parse(r) for r in roles), queues=allowed, expires_at=expires_at
    )


def mint_token(
    secret: str,
    sub: str,
    roles: Iterable[str],
    queues: Iterable[str] | str = "*",
    ttl_s: int = 3600,
    algorithm: str = "HS256",
) -> str:
    """A signed token, for ``jobdeck token`` and for tests."""
    now = int(time.time())
    claims = {
        "sub": sub,
        "roles": list(roles),
        "queues": queues if isinstance(queues, str) else list(queues),
        "iat": now,
        "exp": now + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=algorithm)
