"""JSON logs, one object per line on stderr, with any ``extra`` fields kept.

Loggers that anyone can make write (aiohttp's parser errors, engine.io/Socket.IO junk,
our own "bad request" lines) pass through a ``FloodGate``: a burst of lines, then at
most one a second per message, the next one carrying how many were dropped. A client
sending junk in a loop cannot fill the disk or drown the lines that matter.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class FloodGate(logging.Filter):
    """Lets ``burst`` records of one message through, then one per ``every_s`` seconds."""

    def __init__(self, burst: int = 20, every_s: float = 1.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.burst = burst
        self.every_s = every_s
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [tokens, at, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        state = self._seen.get(key)
        if state is None:
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
            state = self._seen[key] = [float(self.burst), now, 0.0]
        state[0] = min(float(self.burst), state[0] + (now - state[1]) / self.every_s)
        state[1] = now
        if state[0] < 1:
            state[2] += 1
            return False
        state[0] -= 1
        if state[2]:
            record.suppressed = int(state[2])
            state[2] = 0
        return True


# Loggers fed by what unauthenticated clients send.
CLIENT_FED_LOGGERS = (
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "engineio.server",
    "socketio.server",
    "jobdeck.web",
    "jobdeck_gateway.guard",
)


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    gate = FloodGate()
    for name in CLIENT_FED_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []  # e.g. engine.io's own plain-text StreamHandler
        logger.propagate = True
        logger.addFilter(gate)
