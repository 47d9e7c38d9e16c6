"""The nginx ingress as a test process: deploy/nginx's template, pointed at test ports.

The dashboard reaches the API and the gateway on its own origin through this same
config, so the browser tests exercise the routing that `make run` and compose use.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.support.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "jobdeck.conf.template"
ROUTED = ("api", "gateway", "dashboard", "exporter")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


class Ingress:
    """nginx on ``port`` routing to the given ``host:port`` upstreams, logs under ``work``."""

    def __init__(self, work: Path, port: int, upstreams: dict[str, str]) -> None:
        self.work = work
        self.port = port
        self.upstreams = upstreams
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def routing(cls, work: Path, port: int, **services: int) -> Ingress:
        """The ingress in front of the services at the given local ports (``api=8000``...);
        the routes of a service not given lead to a port where nothing listens (502)."""
        unknown = set(services) - set(ROUTED)
        if unknown:
            raise ValueError(f"the ingress routes no {sorted(unknown)}")
        ports = {name: services.get(name) or free_port() for name in ROUTED}
        return cls(
            work, port, {f"{n.upper()}_UPSTREAM": f"127.0.0.1:{p}" for n, p in ports.items()}
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def render(self) -> Path:
        site = TEMPLATE.read_text().replace("listen 3000;", f"listen 127.0.0.1:{self.port};")
        for name, target in self.upstreams.items():
            site = site.replace("${" + name + "}", target)
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "site.conf").write_text(site)
        conf = self.work / "nginx.conf"
        conf.write_text(
            f"worker_processes 1;\npid {self.work}/nginx.pid;\nerror_log {self.work}/error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {self.work}; "
            f"proxy_temp_path {self.work}; include {self.work}/site.conf; }}\n"
        )
        return conf

    def start(self) -> Ingress:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (ensure-browser.sh installs it)")
        conf = self.render()
        with (self.work / "stderr.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [binary, "-p", str(self.work), "-c", str(conf), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self

    async def wait_ready(self, timeout: float = 10.0) -> None:
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {(self.work / 'error.log').read_text()}")
                try:
                    async with session.get(self.url + "/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(answers, timeout, what="the nginx ingress")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@asynccontextmanager
async def ingress_in_front(
    work: Path, port: int | None = None, **services: int
) -> AsyncIterator[Ingress]:
    """A running ingress (see ``Ingress.routing``), stopped on exit."""
    ingress = Ingress.routing(work, port or free_port(), **services).start()
    try:
        await ingress.wait_ready()
        yield ingress
    finally:
        ingress.stop()
