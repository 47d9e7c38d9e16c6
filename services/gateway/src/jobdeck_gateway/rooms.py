"""Who is connected and which rooms each client sits in (this replica only, no I/O).

python-socketio has rooms of its own, but fan-out here is hot (every stream event), so
the gateway keeps its own index: room → clients, and computes each event's recipients
once, as a set, which is what makes "once per client even in several rooms" hold.
Authorization happens at subscribe time; ``recipients`` checks the queue again for the
rooms whose members were not vetted against that queue (job rooms and ``all``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jobdeck.auth import Principal

from jobdeck_gateway.limits import TokenBucket
from jobdeck_gateway.protocol import ALL_ROOM, RoomKind, room_kind

# Rooms named after a queue, joined only by clients whose token covers that queue.
VETTED_PREFIXES = ("queue:", "stats:", "user:")


@dataclass(eq=False)
class Client:
    """One connected socket on this replica.

    ``held`` clients receive nothing live: they are waiting to replay what they missed
    (resume) and go live at the replay's end. ``min_event_id`` skips events a client has
    already seen from a replica further ahead in the stream. ``expiry`` is the timer that
    ends the session when its token expires (one ``loop.call_later`` handle per client).
    """

    sid: str
    principal: Principal
    socket: Any = None  # the engine.io socket (its outgoing queue is where packets go)
    rooms: set[str] = field(default_factory=set)
    held: bool = False
    resume_from: str | None = None
    min_event_id: tuple[int, int] | None = None
    transport: Any = None  # set once frames may be written straight to the websocket
    pending: list[bytes] = field(default_factory=list)  # websocket frames not yet written
    pending_bytes: int = 0
    dropped: int = 0
    dropped_from: str | None = None
    dropped_to: str | None = None
    expiry: asyncio.TimerHandle | None = None
    # What the session may still do (see GatewayConfig): room changes, job lookups.
    room_changes: TokenBucket = field(default_factory=lambda: TokenBucket(20.0, 200))
    job_lookups: TokenBucket = field(default_factory=lambda: TokenBucket(10.0, 100))


class Subscriptions:
    """The room index of one replica."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.rooms: dict[str, set[Client]] = {}

    def add(self, client: Client) -> None:
        self.clients[client.sid] = client

    def remove(self, sid: str) -> Client | None:
        client = self.clients.pop(sid, None)
        if client is not None:
            for room in list(client.rooms):
                self.leave(client, room)
        return client

    def join(self, client: Client, room: str) -> bool:
        """Put ``client`` in ``room``; False if it was already there."""
        if room in client.rooms:
            return False
        client.rooms.add(room)
        self.rooms.setdefault(room, set()).add(client)
        return True

    def leave(self, client: Client, room: str) -> bool:
        if room not in client.rooms:
            return False
        client.rooms.discard(room)
        members = self.rooms.get(room)
        if members is not None:
            members.discard(client)
            if not members:
                del self.rooms[room]
        return True

    def recipients(self, rooms: Iterable[str], queue: str) -> set[Client]:
        """Every client in any of ``rooms`` allowed to see ``queue``, each once."""
        found: set[Client] = set()
        for room in rooms:
            members = self.rooms.get(room)
            if not members:
                continue
            if room.startswith(VETTED_PREFIXES):
                found |= members  # vetted for this queue when they joined; the user's own
            else:
                found.update(c for c in members if c.principal.can_see(queue))
        return found

    def everyone_seeing(self, queue: str) -> list[Client]:
        """Every connected client whose token covers ``queue`` ("*" = system-wide)."""
        if queue == "*":
            return list(self.clients.values())
        return [c for c in self.clients.values() if c.principal.can_see(queue)]

    def matches(self, client: Client, rooms: Iterable[str], queue: str) -> bool:
        """Would ``client`` receive an event sent to ``rooms`` about ``queue``? (replay)"""
        if any(r.startswith("user:") and r in client.rooms for r in rooms):
            return True  # the user's own events (exports), about no queue
        if not client.principal.can_see(queue):
            return False
        return any(r in client.rooms for r in rooms)

    def counts_by_kind(self) -> dict[RoomKind, int]:
        """Subscriptions per room kind, for the metrics."""
        counts: Counter[RoomKind] = Counter()
        for room, members in self.rooms.items():
            counts[room_kind(room)] += len(members)
        return {kind: counts.get(kind, 0) for kind in RoomKind}

    def in_all_room(self, client: Client) -> bool:
        return ALL_ROOM in client.rooms
