"""JWT bearer tokens and what their claims allow (PyJWT; see LIBRARIES.md for why not aiohttp-jwt).

One validation path for the API and the gateway (``TokenVerifier.verify``). A token from a
valid signer is still checked strictly, since an identity provider may issue tokens for
other uses and a bug there must not become admin access here:

- ``sub``: a non-empty string; ``exp`` required, ``nbf``/``iat`` optional, each a JSON
  number (never a string or boolean) between 0 and the year 9999;
- ``roles``: a list of strings; only the exact names ``viewer`` < ``operator`` < ``admin``
  count (no case folding: ``ADMIN`` or a dotless-i ``admin`` grant nothing), others are ignored, and
  at least one must be present; the highest counts;
- ``queues``: ``"*"`` or a list of queue names (``"*"`` in the list means all);
- ``aud`` / ``iss``: verified when ``JOBDECK_JWT_AUDIENCE`` / ``JOBDECK_JWT_ISSUER`` are
  set (settings require both with a public key or a JWKS URL).

Keys: HS256 with the shared secret; RS256 with ``JOBDECK_JWT_PUBLIC_KEY``; or the
identity provider's JWKS (``JOBDECK_JWT_JWKS_URL``, see ``jobdeck.jwks``), picked by the
token's ``kid``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import jwt

from jobdeck import JobdeckError
from jobdeck.jwks import JwksKeys, KeysUnavailable
from jobdeck.settings import Settings

# Numeric claims must be instants up to 9999-12-31T23:59:59Z: past that no timer, float or
# date type downstream can hold them.
MAX_NUMERIC_DATE = 253_402_300_799
MAX_SUB = 256


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


ROLE_NAMES = {r.name.lower(): r for r in Role}


class InvalidToken(JobdeckError):
    """The bearer token is missing, expired, badly signed or malformed."""

    def __init__(self, detail: str, reason: str = "invalid_token") -> None:
        super().__init__(detail)
        # A machine code: missing_token, token_expired, bad_signature, invalid_token,
        # keys_unavailable (the gateway sends it with a refused connection).
        self.reason = reason


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

    @property
    def scope(self) -> list[str]:
        """The queues in the token, as recorded (``["*"]`` for all)."""
        return ["*"] if self.queues is None else sorted(self.queues)


class TokenVerifier:
    """Checks a token's signature, audience and issuer, then its claims (``check_claims``)."""

    def __init__(self, settings: Settings, jwks: JwksKeys | None = None) -> None:
        self._jwks: JwksKeys | None = None
        self._key: Any
        if settings.jwt_jwks_url:
            refresh = settings.jwt_jwks_refresh_s
            self._jwks = jwks or JwksKeys(
                settings.jwt_jwks_url, ttl_s=max(10 * refresh, 60), min_refresh_s=refresh
            )
            self._algorithms: list[str] = []
        elif settings.jwt_public_key:
            self._key = settings.jwt_public_key
            self._algorithms = ["RS256"]
        else:
            self._key = settings.jwt_secret
            self._algorithms = ["HS256"]
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_s

    async def verify(self, token: str | None) -> Principal:
        if not token:
            raise InvalidToken("missing bearer token", "missing_token")
        key: Any = self._key if self._jwks is None else None
        algorithms = self._algorithms
        if self._jwks is not None:
            try:
                jwk = await self._jwks.key_for(_header(token).get("kid"))
            except KeysUnavailable as exc:
                raise InvalidToken(str(exc), "keys_unavailable") from exc
            if jwk is None:
                raise InvalidToken("token signed by an unknown key ('kid')", "bad_signature")
            key, algorithms = jwk.key, [jwk.algorithm_name]
        required = ["exp", "sub"]
        required += ["aud"] if self._audience else []
        required += ["iss"] if self._issuer else []
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                # Times are checked by check_claims, which also insists they are numbers.
                options={
                    "require": required,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("token signature is invalid", "bad_signature") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise InvalidToken("token algorithm is not accepted", "bad_signature") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token audience ('aud') is not this service") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token issuer ('iss') is not accepted") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"token is invalid: {exc}") from exc
        return check_claims(claims, time.time(), self._leeway)


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"token is invalid: {exc}") from exc


def numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as epoch seconds, None if absent; InvalidToken unless a bounded number."""
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"token {name!r} must be a number (seconds since 1970)")
    if not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise InvalidToken(f"token {name!r} is out of range (0 to {MAX_NUMERIC_DATE})")
    return float(value)


def check_claims(claims: Mapping[str, Any], now: float, leeway: float = 0) -> Principal:
    """The principal of an authentic token, or InvalidToken saying which claim is wrong."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB:
        raise InvalidToken(f"token 'sub' must be a string of 1 to {MAX_SUB} characters")
    exp = numeric_date(claims, "exp")
    if exp is None:
        raise InvalidToken("token lacks the 'exp' claim")
    nbf = numeric_date(claims, "nbf")
    iat = numeric_date(claims, "iat")
    if exp <= now - leeway:
        raise InvalidToken("token expired", "token_expired")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("token is not valid yet ('nbf' is in the future)")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("token was issued in the future ('iat')")
    return Principal(sub=sub, role=_role(claims), queues=_queues(claims), expires_at=exp)


def _role(claims: Mapping[str, Any]) -> Role:
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("token 'roles' must be a list of role names")
    known = [ROLE_NAMES[r] for r in roles if r in ROLE_NAMES]
    if not known:
        raise InvalidToken("token 'roles' holds none of viewer, operator, admin (exact names)")
    return max(known)


def _queues(claims: Mapping[str, Any]) -> frozenset[str] | None:
    queues = claims.get("queues", [])
    if queues == "*":
        return None
    if not isinstance(queues, list) or not all(isinstance(q, str) and q for q in queues):
        raise InvalidToken("token 'queues' must be '*' or a list of queue names")
    return None if "*" in queues else frozenset(queues)


def mint_token(
    key: Any,
    sub: str,
    roles: Iterable[str],
    queues: Iterable[str] | str = "*",
    ttl_s: int = 3600,
    algorithm: str = "HS256",
    audience: str | None = None,
    issuer: str | None = None,
    kid: str | None = None,
) -> str:
    """A signed token, for ``jobdeck token`` and for tests (``key``: secret or private key)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": list(roles),
        "queues": queues if isinstance(queues, str) else list(queues),
        "iat": now,
        "exp": now + ttl_s,
    }
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)
