"""Error fingerprints: failures grouped by what went wrong, not by which job it hit.

Two failures share a fingerprint when they have the same error type and the same message
once the parts that vary from job to job are replaced by placeholders: URLs, file paths,
e-mail addresses, UUIDs, hex strings, IP addresses, quoted values, long ids and numbers.
"Connection to 10.0.0.7:5432 refused after 3 attempts" and "... 10.0.0.9:5432 ... 5 ..."
are one problem; the fingerprint is a short hash of the type and that pattern.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

MAX_PATTERN = 300
FINGERPRINT_LENGTH = 16

# Order matters: wide shapes (URLs, paths) first, so their digits are not numbered apart.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+", re.I), "<url>"),
    (re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"), "<email>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-~@]+){2,}[\\/]?|(?:\.{1,2}/)[\w.\-/]+"), "<path>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"'[^']*'"), "'<v>'"),
    (re.compile(r'"[^"]*"'), '"<v>"'),
    (re.compile(r"`[^`]*`"), "`<v>`"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?=[\w\-]*\d)(?=[\w\-]*[A-Za-z])[\w\-]{12,}\b"), "<id>"),
    (re.compile(r"[-+]?\d+(?:[.,]\d+)*"), "<n>"),
    (re.compile(r"\s+"), " "),
)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    value: str  # hex, FINGERPRINT_LENGTH characters
    error_type: str
    pattern: str


def normalise(message: str) -> str:
    """The message with job-specific parts replaced by placeholders."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    for rule, placeholder in _RULES:
        text = rule.sub(placeholder, text)
    return text.strip()[:MAX_PATTERN]


@functools.lru_cache(maxsize=4096)
def fingerprint(error_type: str | None, message: str | None) -> Fingerprint:
    """The fingerprint of one failure (an unknown type or message counts as empty)."""
    kind = (error_type or "Error").strip()[:200] or "Error"
    pattern = normalise(message or "")
    digest = hashlib.sha1(f"{kind}\n{pattern}".encode(), usedforsecurity=False).hexdigest()
    return Fingerprint(digest[:FINGERPRINT_LENGTH], kind, pattern)
