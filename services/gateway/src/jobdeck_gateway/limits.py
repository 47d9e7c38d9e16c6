"""Token buckets: how the gateway bounds what one client address or one session may do."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``burst`` tokens refilled at ``rate`` a second; each ``take`` spends one."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self, now: float | None = None) -> bool:
        """Refilled to ``burst``: the bucket holds no state a fresh one would not."""
        now = time.monotonic() if now is None else now
        return self.tokens + (now - self.at) * self.rate >= self.burst

    def wait_s(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate > 0 else float("inf")
