"""The seed's browser snippets, verbatim, run by Node (scripts in ``tests/node``) as a page
served from an origin would run them: relative URLs resolve against that origin."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.processes import ServiceProcess

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def node_missing() -> bool:
    return shutil.which("node") is None


async def run_page_script(
    script: str,
    origin: str,
    token: str,
    services: Sequence[ServiceProcess] = (),
    timeout: float = 60,
    **env: str,
) -> dict[str, Any]:
    """Run ``tests/node/<script>`` with ``JOBDECK_ORIGIN``/``JOBDECK_TOKEN`` (plus ``env``)
    and return the JSON line it prints last; a failed script fails with its output and the
    log tails of ``services``."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_DIR / script),
        cwd=NODE_DIR,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/local/bin"),
            "JOBDECK_ORIGIN": origin,
            "JOBDECK_TOKEN": token,
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        logs = "".join(service.log_tail() for service in services)
        raise RuntimeError(f"node {script} exited {proc.returncode}: {text}{logs}")
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return result
