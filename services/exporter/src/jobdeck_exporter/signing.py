"""Signed, expiring download URLs for files in local storage.

``/exports/<key>?expires=<epoch s>&sig=<hex>``: the signature is an HMAC-SHA256 over the
key and the expiry, so neither can be changed without the secret; an expired or altered
URL is refused (403) before the file is even looked up. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote


class UrlSigner:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, prefix: str, key: str, expires: int) -> str:
        """``prefix`` is the public origin ("" for a path the ingress serves)."""
        sig = self.signature(key, expires)
        return f"{prefix}/exports/{quote(key)}?expires={expires}&sig={sig}"

    def refusal(self, key: str, expires: str | None, sig: str | None, now: float) -> str | None:
        """Why this URL must not be served, or None if it may."""
        if not expires or not sig or not expires.isdigit() or len(expires) > 12:
            return "missing or malformed signature"
        if not hmac.compare_digest(self.signature(key, int(expires)), sig):
            return "bad signature"
        if int(expires) <= now:
            return "link expired"
        return None
