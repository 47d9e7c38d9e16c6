"""Start jobdeck services as real processes for end-to-end tests, and stop them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields
from pathlib import Path

import aiohttp
from jobdeck.settings import Settings


def free_port() -> int:
    """A port for a service to listen on, that no other ``bind(0)`` takes for a minute.

    A port merely closed can be handed out again at once: two services starting side by
    side (eight workers of one test, or another test's in the other pytest process) can get
    the same one; the second fails to bind and exits, and the first one's ``/readyz`` makes
    it look ready. Here the port is left in TIME_WAIT, which the kernel does not hand out
    again, but which a server binding it by number with SO_REUSEADDR (asyncio, nginx, node,
    redis-server) takes over.
    """
    with socket.create_server(("127.0.0.1", 0)) as server:  # SO_REUSEADDR, inherited below
        address = server.getsockname()
        with socket.create_connection(address):
            accepted, _ = server.accept()
            accepted.close()  # closed first, so this end of the connection waits in TIME_WAIT
    return int(address[1])


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a service process needs to run with ``settings``."""
    env = dict(os.environ)
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None and f.name not in ("port", "instance"):
            env[f"JOBDECK_{f.name.upper()}"] = str(value)
    if settings.uses_dev_secret:  # the built-in secret is refused outside development
        env["JOBDECK_ENV"] = "development"
    env.update(extra)
    return env


class ServiceProcess:
    """One service (``python -m <module>``) running in its own process, logs to a file."""

    def __init__(
        self, module: str, env: dict[str, str], port: int, log_dir: Path, args: list[str] = ()
    ) -> None:
        self.module = module
        self.env = env
        self.port = port
        self.args = list(args)
        self.log_path = log_dir / f"{module}-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    async def wait_ready(self, timeout: float = 60.0) -> None:  # a loaded CI box starts slowly
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.module} exited: {self.log_tail()}")
                try:
                    async with session.get(self.url + "/readyz") as resp:
                        if resp.status == 200:
                            self._check_answered_by_own(await resp.json())
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.module} not ready after {timeout}s: {self.log_tail()}")

    def _check_answered_by_own(self, ready: dict[str, object]) -> None:
        """A 200 from another process on this port (it took the port first; this one then
        failed to bind and is exiting) is not this service being ready."""
        if self.proc is not None and ready.get("pid") != self.proc.pid:
            raise RuntimeError(
                f"{self.module}: port {self.port} answered by pid {ready.get('pid')},"
                f" not by this service (pid {self.proc.pid}): {self.log_tail()}"
            )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``condition`` until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
