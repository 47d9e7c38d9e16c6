"""``python -m jobdeck_gateway``: the Socket.IO gateway (namespace /jobs, port 8001)."""

from __future__ import annotations

import gc
import os
import sys


def use_c_allocator() -> None:
    """Run on the C allocator (``PYTHONMALLOC=malloc``) unless ``PYTHONMALLOC`` is set.

    CPython's own allocator hands a 1 MiB arena back only once every object in it is
    freed: after a flood of sessions a few long-lived objects pin most of the arenas the
    flood took, for good. glibc gives free pages back on ``malloc_trim``, which the
    gateway calls after a flood (``engine.CompactingEngine.compact``). The interpreter
    reads the variable at start, hence the re-exec (same pid, same arguments);
    ``PYTHONMALLOC=pymalloc`` keeps CPython's allocator.
    """
    if "PYTHONMALLOC" not in os.environ:
        os.execve(sys.executable, sys.orig_argv, {**os.environ, "PYTHONMALLOC": "malloc"})


def tune_gc() -> None:
    """Keep full collections rare: with thousands of sockets each one walks every object.

    The fan-out allocates many short-lived objects; a larger first-generation threshold
    lets them die young instead of being promoted, and the start-up objects are frozen
    out of every collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main() -> None:
    use_c_allocator()
    # Imported after the re-exec, so the first interpreter does not load the whole app.
    from jobdeck.logs import setup_logging
    from jobdeck.settings import Settings, exit_on_config_error
    from jobdeck.web import run_service

    from jobdeck_gateway.app import build_app
    from jobdeck_gateway.config import GatewayConfig

    settings, config = exit_on_config_error(
        "gateway", lambda: (Settings.from_env("gateway"), GatewayConfig.from_env())
    )
    setup_logging("gateway", settings.log_level)
    tune_gc()
    run_service(build_app(settings, config), "gateway")


if __name__ == "__main__":
    main()
