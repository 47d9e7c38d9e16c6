"""An identity provider's signing keys, fetched from its JWKS URL and cached by ``kid``.

Keys are fetched on first use and kept for ``ttl_s``; a token naming a ``kid`` not in the
cache triggers one refetch (key rotation), at most once per ``min_refresh_s`` so that
tokens with random ``kid``s cannot turn the services into a request flood against the
provider. Concurrent lookups share one fetch. If the provider cannot be reached, the last
keys fetched stay in use. Only asymmetric keys are accepted: a JWKS that published an
``oct`` key would let anyone who reads it sign tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import jwt

from jobdeck import JobdeckError

log = logging.getLogger(__name__)

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_JWKS_BYTES = 1 << 20


class KeysUnavailable(JobdeckError):
    """The identity provider's signing keys (JWKS) could not be fetched."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        ttl_s: float = 300.0,
        min_refresh_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self.fetches = 0
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = -float("inf")
        self._fetching: asyncio.Future[None] | None = None

    async def key_for(self, kid: Any) -> jwt.PyJWK | None:
        """The key named ``kid`` (or the only key, for tokens without one); None if unknown."""
        if kid is not None and not isinstance(kid, str):
            return None
        now = time.monotonic()
        stale = now - self._fetched_at >= self.ttl_s
        missing = self._keys is None or kid not in self._keys
        if stale or (missing and now - self._fetched_at >= self.min_refresh_s):
            await self._refresh()
        if self._keys is None:
            raise KeysUnavailable()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        fetching = self._fetching
        try:
            await asyncio.shield(fetching)
        finally:
            if self._fetching is fetching and fetching.done():
                self._fetching = None

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url, headers={"Accept": "application/json"}) as resp,
            ):
                resp.raise_for_status()
                body = await resp.content.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            self._keys = parse_jwks(body.decode())
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            log.warning(
                "JWKS fetch failed; keeping the keys fetched before",
                extra={"url": self.url, "error": repr(exc)},
            )


def parse_jwks(text: str) -> dict[str | None, jwt.PyJWK]:
    """The asymmetric signing keys of a JWKS document, by ``kid``.

    A key without a ``kid`` is also filed under None, for tokens that name none (providers
    with a single key)."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWKS document (an object with a 'keys' list)")
    keys: dict[str | None, jwt.PyJWK] = {}
    for jwk in jwt.PyJWKSet(doc["keys"]).keys:
        if jwk.algorithm_name not in ASYMMETRIC or jwk.public_key_use not in (None, "sig"):
            continue
        keys[jwk.key_id] = jwk
    if len(keys) == 1 and None not in keys:
        keys[None] = next(iter(keys.values()))
    return keys
