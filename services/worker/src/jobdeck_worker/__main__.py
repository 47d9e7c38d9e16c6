"""``python -m jobdeck_worker --tasks module.path --queue NAME[:CONCURRENCY] ...``.

Queues and the tasks module may also come from ``JOBDECK_WORKER_QUEUES`` (comma separated)
and ``JOBDECK_WORKER_TASKS``; connection settings and the ops port from the usual
``JOBDECK_*`` variables (``JOBDECK_WORKER_PORT``, 0 picks a free port). The tasks module has
no default: a production worker must never serve the demo tasks by accident (``make run``
names ``jobdeck_worker.demo`` itself).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from aiohttp import web
from jobdeck.logs import setup_logging
from jobdeck.settings import ConfigError, Settings, exit_on_config_error

from jobdeck_worker.app import build_app
from jobdeck_worker.options import WorkerOptions
from jobdeck_worker.registry import TaskRegistry
from jobdeck_worker.runtime import QueueSpec, WorkerRuntime

log = logging.getLogger("jobdeck_worker")


def parse_args(argv: Sequence[str], env: dict[str, str]) -> argparse.Namespace:
    defaults = WorkerOptions()
    parser = argparse.ArgumentParser(prog="jobdeck_worker", description=__doc__)
    parser.add_argument(
        "--queue",
        action="append",
        type=QueueSpec.parse,
        metavar="NAME[:CONCURRENCY]",
        help="queue to serve, repeatable (default concurrency 10)",
    )
    parser.add_argument(
        "--tasks",
        default=env.get("JOBDECK_WORKER_TASKS"),
        help="module exposing a TaskRegistry named `registry` (required; or "
        "JOBDECK_WORKER_TASKS); the demo tasks are `jobdeck_worker.demo`",
    )
    parser.add_argument("--grace", type=float, default=defaults.grace_s, help="SIGTERM grace (s)")
    parser.add_argument(
        "--lease",
        type=float,
        default=None,
        help=f"job lease (s): how soon a killed worker's jobs run again "
        f"(default {defaults.lease_s:g}, at most the longest job run + 10)",
    )
    parser.add_argument(
        "--max-timeout",
        "--job-timeout",
        dest="max_timeout",
        type=float,
        default=defaults.max_timeout_s,
        help="longest a job may run, whatever its own timeout (s)",
    )
    parser.add_argument(
        "--fallback-poll", type=float, default=defaults.fallback_poll_s, help="idle re-check (s)"
    )
    parser.add_argument(
        "--loop-lag-warn",
        type=float,
        default=defaults.loop_lag_warn_s,
        help="log a blocked event loop after this long (s)",
    )
    args = parser.parse_args(list(argv))
    if not args.tasks:
        parser.error("--tasks MODULE (or JOBDECK_WORKER_TASKS) is required")
    if args.lease is None:
        args.lease = min(defaults.lease_s, args.max_timeout + 10)
    if not args.queue:
        raw = env.get("JOBDECK_WORKER_QUEUES", "default")
        try:
            args.queue = [QueueSpec.parse(q) for q in raw.split(",") if q.strip()]
        except ValueError as exc:
            raise ConfigError(
                f"JOBDECK_WORKER_QUEUES={raw!r}: accepts NAME[:CONCURRENCY],... ({exc})"
            ) from None
        if not args.queue:
            raise ConfigError(f"JOBDECK_WORKER_QUEUES={raw!r}: accepts NAME[:CONCURRENCY],...")
    return args


def load_registry(module_path: str) -> TaskRegistry:
    accepts = f"JOBDECK_WORKER_TASKS (or --tasks)={module_path!r}: accepts an importable module"
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{accepts} ({exc})") from None
    registry = getattr(module, "registry", None)
    if not isinstance(registry, TaskRegistry):
        raise ConfigError(f"{accepts} with a TaskRegistry named `registry`")
    return registry


def bind_ops_port(host: str, port: int) -> socket.socket:
    """The ops port, bound before any queue loop starts: a worker whose port is taken exits
    before it claims anything. Bound after, it exited holding the jobs it had claimed, each
    charged an attempt and stuck for a lease (a crash-looping worker did so at every start).
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return socket.create_server((host, port), family=family[0][0])


async def serve(settings: Settings, runtime: WorkerRuntime) -> int:
    """Run until SIGTERM/SIGINT (a second one skips the grace period); exit code."""
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: handing running jobs back now")
            hurry.set()
        else:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    ops = bind_ops_port(settings.host, settings.port)
    await runtime.start()
    runner = web.AppRunner(build_app(runtime), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, ops)
    await site.start()
    log.info("ops endpoints listening", extra={"url": site.name})
    stopped = asyncio.ensure_future(stop.wait())
    crashed = asyncio.ensure_future(runtime.crashed.wait())
    await asyncio.wait({stopped, crashed}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    crashed.cancel()
    await runtime.stop(hurry=hurry)
    await runner.cleanup()
    return 1 if runtime.crashed.is_set() else 0


def configure(
    argv: Sequence[str], env: dict[str, str]
) -> tuple[argparse.Namespace, Settings, TaskRegistry]:
    """Arguments, settings and tasks; ConfigError on a bad value. The worker never verifies
    or mints tokens, so it needs no JWT secret and the secret policy does not apply."""
    args = parse_args(argv, env)
    settings = Settings.from_env("worker", env, signs_tokens=False)
    return args, settings, load_registry(args.tasks)


def main(argv: Sequence[str] | None = None) -> None:
    env = dict(os.environ)
    args, settings, registry = exit_on_config_error(
        "worker", lambda: configure(sys.argv[1:] if argv is None else argv, env)
    )
    setup_logging("worker", settings.log_level)
    log.info("starting", extra={"service": "worker", "settings": settings.masked()})
    options = WorkerOptions(
        grace_s=args.grace,
        lease_s=args.lease,
        max_timeout_s=args.max_timeout,
        fallback_poll_s=args.fallback_poll,
        loop_lag_warn_s=args.loop_lag_warn,
    )
    runtime = WorkerRuntime(settings, registry, args.queue, options)
    sys.exit(asyncio.run(serve(settings, runtime)))


if __name__ == "__main__":
    main()
