"""The periodic loop: measure (one replica), alert (once per crossing), emit stats (all).

Alerts are "not once per replica": the measuring replica holds a Redis lease, and each
transition is a compare-and-set on the shared raised-alerts hash done in the same Lua
script as the XADD of its ``alert`` event, so even two replicas racing emit a crossing
once. The event then reaches every replica's clients through the stream like any other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from typing import Any

import asyncpg
from jobdeck.auth import Principal
from jobdeck.events import Event, EventType, encode, now_ms
from jobdeck.streams import EVENTS
from jobdeck.usage import (
    ResourceBreach,
    read_postgres,
    read_processes,
    read_redis,
    resource_checks,
)
from redis.asyncio import Redis

from jobdeck_gateway import alerts, metrics
from jobdeck_gateway.config import GatewayConfig
from jobdeck_gateway.fanout import Fanout
from jobdeck_gateway.protocol import ALL_ROOM, SocketEvent, queue_room, stats_room
from jobdeck_gateway.rooms import Client, Subscriptions
from jobdeck_gateway.stats import Snapshot, measure, queue_stats_payload, system_stats_payload

log = logging.getLogger(__name__)

LEADER_KEY = "jobdeck:gateway:leader"
SNAPSHOT_KEY = "jobdeck:gateway:stats"
ALERTS_KEY = "jobdeck:gateway:alerts"

_LEASE = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: raised-alerts hash, stream; ARGV: field, state, info json, event bytes, maxlen
_TRANSITION = """
local present = redis.call('HEXISTS', KEYS[1], ARGV[1])
if ARGV[2] == 'raised' then
  if present == 1 then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
else
  if present == 0 then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[4])
return 1
"""


def alert_inputs(snap: Snapshot) -> list[alerts.QueueAlertInputs]:
    """Join the snapshot with the queue configs' thresholds."""
    rows = {r["queue"]: r for r in snap.alert_rows}
    found = []
    for q, s in snap.queues.items():
        r = rows.get(q, {})
        oldest = r.get("oldest_waiting_s")
        found.append(
            alerts.QueueAlertInputs(
                queue=q,
                waiting=s.waiting,
                live_workers=s.workers,
                failed_in_window=int(r.get("failed") or 0),
                finished_in_window=int(r.get("finished") or 0),
                oldest_waiting_s=float(oldest) if oldest is not None else None,
                failure_rate_threshold=r.get("alert_failure_rate"),
                failure_window_s=int(r.get("alert_failure_window_s") or 300),
                backlog_threshold=r.get("alert_waiting_backlog"),
                oldest_waiting_threshold_s=r.get("alert_oldest_waiting_s"),
            )
        )
    return found


async def active_alerts(redis: Redis, principal: Principal) -> list[dict[str, Any]]:
    """Alerts raised now that ``principal`` may see (sent in ``connected``)."""
    state = await redis.hgetall(ALERTS_KEY)  # type: ignore[misc]
    found = []
    for raw in state.values():
        try:
            info = json.loads(raw)
        except ValueError:
            continue
        queue = info.get("queue") if isinstance(info, dict) else None
        if isinstance(info, dict) and (queue is None or principal.can_see(queue)):
            found.append(info)
    return sorted(found, key=lambda a: (a.get("ts") or 0, str(a.get("kind"))))


class Monitor:
    def __init__(
        self,
        redis: Redis,
        pg: asyncpg.Pool,
        fanout: Fanout,
        subs: Subscriptions,
        config: GatewayConfig,
        instance: str,
        stream_maxlen: int,
    ) -> None:
        self.redis = redis
        self.pg = pg
        self.fanout = fanout
        self.subs = subs
        self.config = config
        self.instance = instance
        self.stream_maxlen = stream_maxlen
        self.latest: Snapshot | None = None
        self._lease = redis.register_script(_LEASE)
        self._transition = redis.register_script(_TRANSITION)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres/Redis down: keep going, next tick retries
                log.warning("stats tick failed", extra={"error": repr(exc)})
            await asyncio.sleep(self.config.stats_interval_s)

    async def tick(self) -> None:
        lease_ms = int(self.config.stats_interval_s * 3000)
        leader = bool(await self._lease(keys=[LEADER_KEY], args=[self.instance, lease_ms]))
        if leader:
            snap = await measure(self.redis, self.pg, self.config.stats_window_s)
        else:
            raw = await self.redis.get(SNAPSHOT_KEY)
            if raw is None:
                return
            snap = Snapshot.from_json(raw)
        self.latest = snap
        self.emit(snap)
        metrics.STATS_AGE.observe(max(0.0, time.time() - snap.ts / 1000))
        # The other replicas' copy and the alerts after the emit: their round trips (and the
        # alerts' Postgres and Redis usage checks) must not make every client's stats older.
        if leader:
            await self.redis.set(SNAPSHOT_KEY, snap.to_json(), px=lease_ms)
            await self.raise_and_clear(snap)

    async def raise_and_clear(self, snap: Snapshot) -> None:
        observations = [
            o for q in alert_inputs(snap) for o in alerts.observe_queue(q)
        ] + alerts.observe_recorder(snap.recorder_lag, self.config.recorder_lag_alert)
        observations += alerts.observe_resources(await self.resource_checks())
        state = await self.redis.hgetall(ALERTS_KEY)  # type: ignore[misc]
        raised = {k.decode(): v for k, v in state.items()}
        for t in alerts.transitions(observations, raised):
            await self.publish(t)

    async def resource_checks(self) -> list[ResourceBreach]:
        """Processes (their own samples), Redis and Postgres against the thresholds."""
        processes = await read_processes(self.redis, now_ms())
        redis_usage = await read_redis(self.redis, {})
        pg_usage = await read_postgres(self.pg, largest=0)
        return resource_checks(processes, redis_usage, pg_usage, self.config.resources)

    async def publish(self, t: alerts.Transition) -> bool:
        obs = t.observation
        fields: dict[str, Any] = {
            "severity": str(alerts.SEVERITY[obs.kind]),
            "kind": str(obs.kind),
            "state": str(t.state),
            "value": obs.value,
            "threshold": obs.threshold,
            "message": t.message,
        }
        event = Event(type=EventType.ALERT, queue=obs.queue, ts=now_ms(), fields=fields)
        active = {
            **fields,
            "queue": None if obs.queue == alerts.SYSTEM else obs.queue,
            "ts": event.ts,
        }
        done = await self._transition(
            keys=[ALERTS_KEY, EVENTS],
            args=[obs.key, str(t.state), json.dumps(active), encode(event), self.stream_maxlen],
        )
        if done:
            metrics.ALERT_TRANSITIONS.labels(str(obs.kind), str(t.state)).inc()
            log.info("alert", extra={"alert": fields, "queue": obs.queue})
        return bool(done)

    def emit(self, snap: Snapshot) -> None:
        """``queueStats`` to each queue's rooms (and ``all``), ``systemStats`` to everyone."""
        for q, s in snap.queues.items():
            clients = self.subs.recipients((queue_room(q), stats_room(q), ALL_ROOM), q)
            if clients:
                self.fanout.send(
                    clients,
                    SocketEvent.QUEUE_STATS,
                    queue_stats_payload(q, s, snap.ts, snap.window_s),
                )
        by_scope: dict[frozenset[str] | None, list[Client]] = defaultdict(list)
        for client in self.subs.clients.values():
            by_scope[client.principal.queues].append(client)
        for scope, members in by_scope.items():
            self.fanout.send(members, SocketEvent.SYSTEM_STATS, system_stats_payload(snap, scope))
