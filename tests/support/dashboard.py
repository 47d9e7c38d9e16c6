"""The whole stack behind the ingress, and Debian's Chromium driven by Playwright.

Used by tests/e2e/test_dashboard.py and bench/dashboard.py. The browser is the system's
``/usr/bin/chromium`` (Playwright's own browser download is never used: it cannot work
offline); deploy/local/ensure-browser.sh installs it and nginx.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobdeck.settings import Settings
from playwright.async_api import Browser, ConsoleMessage, Page, Playwright

from tests.support.ingress import Ingress
from tests.support.processes import ServiceProcess, free_port, settings_env

CHROMIUM = os.environ.get("JOBDECK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


@dataclass
class Stack:
    """Recorder, worker, API, gateway, scheduler, exporter and dashboard as processes, one
    origin via nginx."""

    ingress: Ingress
    api: ServiceProcess
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.ingress.url

    def stop(self) -> None:
        self.ingress.stop()
        for proc in self.processes:
            proc.stop()


async def start_stack(
    settings: Settings,
    work: Path,
    secret: str,
    worker_args: Sequence[str],
    extra_env: dict[str, str] | None = None,
) -> Stack:
    overrides = {
        "JOBDECK_JWT_SECRET": secret,
        "JOBDECK_LOG_LEVEL": "WARNING",
        "JOBDECK_API_RATE_LIMIT": "off",
        "JOBDECK_RECORDER_BLOCK_MS": "100",
        **(extra_env or {}),
    }
    ingress_port = free_port()
    overrides.setdefault("JOBDECK_STORAGE_URL", (work / "exports").as_uri())
    # Download links on the page's own origin (the ingress routes /exports to the exporter).
    overrides.setdefault("JOBDECK_EXPORTER_PUBLIC_URL", f"http://127.0.0.1:{ingress_port}")
    env = settings_env(settings, **overrides)
    services = ("recorder", "worker", "api", "gateway", "scheduler", "exporter", "dashboard")
    ports = {name: free_port() for name in services}
    procs = {
        name: ServiceProcess(
            f"jobdeck_{name}",
            {**env, f"JOBDECK_{name.upper()}_PORT": str(port)},
            port,
            work,
            list(worker_args) if name == "worker" else [],
        )
        for name, port in ports.items()
    }
    ingress = Ingress.routing(
        work / "nginx",
        ingress_port,
        api=ports["api"],
        gateway=ports["gateway"],
        dashboard=ports["dashboard"],
        exporter=ports["exporter"],
    )
    stack = Stack(ingress, procs["api"], list(procs.values()))
    try:
        for proc in procs.values():
            proc.start()
        ingress.start()
        # Eight processes start at once on two shared cores: allow for a busy machine.
        await asyncio.gather(
            *(p.wait_ready(timeout=90) for p in procs.values()), ingress.wait_ready(timeout=30)
        )
    except BaseException:
        stack.stop()
        raise
    return stack


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class Tab:
    """A page plus every console error and uncaught exception it produced."""

    page: Page
    errors: list[str] = field(default_factory=list)


async def open_tab(browser: Browser, url: str, token: str, viewport: dict[str, int] = WIDE) -> Tab:
    """A fresh browser context signed in through the link `make run` prints."""
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    tab = Tab(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(message.text)

    def page_error(error: Any) -> None:
        tab.errors.append(str(error))

    page.on("console", console)
    page.on("pageerror", page_error)
    await page.goto(f"{url}/#token={token}")
    return tab
