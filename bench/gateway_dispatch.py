"""Gateway fan-out CPU per stream event nobody on the replica watches (the common case).

Decodes and dispatches N added / started / completed events of unwatched jobs through a
``Fanout`` whose only clients sit in stats rooms and in 50 job rooms of other jobs, as in
``bench/dashboard.py``: the cost the gateway pays for every event of a busy queue before it
knows nobody wants it. Prints the CPU time per event (median of ``--rounds``), with and
without the dispatch (decode only). No Redis, no sockets: pure CPU, a few seconds.

    .venv/bin/python bench/gateway_dispatch.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import socketio
from jobdeck.auth import Principal, Role
from jobdeck.events import Event, EventType, encode
from jobdeck.streams import EVENT_FIELD
from jobdeck_gateway.fanout import Fanout, _decode
from jobdeck_gateway.protocol import job_room, stats_room
from jobdeck_gateway.rooms import Client, Subscriptions

FIELDS: dict[EventType, dict[str, Any]] = {
    EventType.ADDED: {"status": "waiting", "priority": 0, "max_attempts": 3},
    EventType.STARTED: {"started_at": 1, "worker": "w1", "max_attempts": 3},
    EventType.COMPLETED: {"started_at": 1, "finished_at": 4, "duration_ms": 3, "result": None},
}


def entries(n: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    rng = random.Random(13)
    kinds = list(FIELDS)
    found = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        event = Event(
            type=kind,
            queue=rng.choice(("bench-a", "bench-b")),
            job_id=f"job-{i // len(kinds)}",
            attempt=1,
            name="noop",
            fields=FIELDS[kind],
        )
        found.append((f"{1_700_000_000_000 + i}-0".encode(), {EVENT_FIELD: encode(event)}))
    return found


def fanout() -> Fanout:
    subs = Subscriptions()
    principal = Principal("bench", Role.ADMIN, None)
    overview, jobs_page = Client("overview", principal), Client("jobs", principal)
    for client in (overview, jobs_page):
        subs.add(client)
    for queue in ("bench-a", "bench-b", "bench-long"):
        subs.join(overview, stats_room(queue))
    for i in range(50):
        subs.join(jobs_page, job_room(f"long-{i}"))
    return Fanout(socketio.AsyncServer(async_mode="aiohttp"), subs, None, 2000)  # type: ignore[arg-type]


def per_event_us(batch: list[tuple[bytes, dict[bytes, bytes]]], step: Callable[..., Any]) -> float:
    start = time.process_time()
    for raw_id, fields in batch:
        step(raw_id.decode(), fields)
    return (time.process_time() - start) / len(batch) * 1e6


def main(n: int, rounds: int) -> None:
    batch = entries(n)
    fan = fanout()

    def dispatch(entry_id: str, fields: dict[bytes, bytes]) -> None:
        event = _decode(entry_id, fields)
        if event is not None:
            fan.dispatch(entry_id, event)

    full = statistics.median(per_event_us(batch, dispatch) for _ in range(rounds))
    decode = statistics.median(per_event_us(batch, _decode) for _ in range(rounds))
    print(
        f"gateway dispatch of {n:,} unwatched events: {full:.1f} us/event CPU "
        f"(decode alone {decode:.1f} us), median of {rounds}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    ns = parser.parse_args()
    main(ns.events, ns.rounds)
