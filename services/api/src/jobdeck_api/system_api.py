"""``GET /api/v1/system``: the state of the pipeline an on-call admin looks at first.

The event stream (length, bounds), its consumer groups and how far each is behind, the
dead letters (entries the recorder refused, with why) and the service instances and
workers seen alive. Everything is read live from Redis; nothing here is cached.
"""

from __future__ import annotations

import base64
from typing import Any

from jobdeck.auth import Role
from jobdeck.depth import live_workers
from jobdeck.events import now_ms
from jobdeck.instances import seen_instances
from jobdeck.lag import read_recorder_lag
from jobdeck.streams import DEAD_LETTER_MAXLEN, DEAD_LETTERS, EVENTS
from jobdeck.web import REDIS, SETTINGS
from pydantic import Field
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from jobdeck_api.models import Model
from jobdeck_api.routing import ApiRequest, ApiRoutes

routes = ApiRoutes()
TAG = ["system"]
RAW_SHOWN_BYTES = 2048


class SystemQuery(Model):
    dead_letters: int = Field(
        default=10, ge=0, le=100, description="how many of the newest dead letters to show"
    )


class StreamInfo(Model):
    key: str
    length: int
    maxlen: int = Field(description="the approximate cap the producers trim the stream to")
    first_id: str | None = None
    last_id: str | None = None


class ConsumerInfo(Model):
    name: str
    pending: int
    idle_ms: int


class GroupInfo(Model):
    name: str
    consumers: list[ConsumerInfo]
    pending: int = Field(description="delivered to a consumer, not yet acknowledged")
    last_delivered_id: str
    lag: int | None = Field(description="entries not yet delivered (None: Redis cannot tell)")


class DeadLetter(Model):
    id: str
    entry_id: str = Field(description="the id the entry had in the event stream")
    reason: str
    raw_base64: str = Field(description=f"the entry as stored, first {RAW_SHOWN_BYTES} bytes")
    truncated: bool


class DeadLetters(Model):
    key: str
    count: int
    maxlen: int
    last: list[DeadLetter]


class RecorderInfo(Model):
    behind: int
    lag: int | None
    pending: int
    consumers: int
    events_per_s: float
    updated_at: int
    instance: str


class InstanceInfo(Model):
    instance: str
    service: str
    host: str
    pid: int
    started_at: int
    expires_at: int


class WorkerInfo(Model):
    instance: str
    queues: list[str]
    concurrency: int
    active: int


class SystemReport(Model):
    ts: int
    stream: StreamInfo
    groups: list[GroupInfo]
    dead_letters: DeadLetters
    recorder: RecorderInfo | None = Field(
        description="what the recorder last published (None: no recorder running)"
    )
    instances: list[InstanceInfo]
    workers: list[WorkerInfo]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _stream(redis: Redis, maxlen: int) -> StreamInfo:
    length = int(await redis.xlen(EVENTS))
    first = await redis.xrange(EVENTS, count=1)
    last = await redis.xrevrange(EVENTS, count=1)
    return StreamInfo(
        key=EVENTS,
        length=length,
        maxlen=maxlen,
        first_id=_text(first[0][0]) if first else None,
        last_id=_text(last[0][0]) if last else None,
    )


async def _groups(redis: Redis) -> list[GroupInfo]:
    try:
        groups = await redis.xinfo_groups(EVENTS)
    except ResponseError:  # no stream yet
        return []
    found = []
    for g in groups:
        name = _text(g["name"])
        consumers = await redis.xinfo_consumers(EVENTS, name)
        found.append(
            GroupInfo(
                name=name,
                consumers=[
                    ConsumerInfo(
                        name=_text(c["name"]), pending=int(c["pending"]), idle_ms=int(c["idle"])
                    )
                    for c in consumers
                ],
                pending=int(g["pending"]),
                last_delivered_id=_text(g["last-delivered-id"]),
                lag=int(g["lag"]) if g.get("lag") is not None else None,
            )
        )
    return found


async def _dead_letters(redis: Redis, shown: int) -> DeadLetters:
    count = int(await redis.xlen(DEAD_LETTERS))
    entries = await redis.xrevrange(DEAD_LETTERS, count=shown) if shown else []
    last = []
    for entry_id, fields in entries:
        raw = fields.get(b"raw", b"")
        last.append(
            DeadLetter(
                id=_text(entry_id),
                entry_id=_text(fields.get(b"id", b"")),
                reason=_text(fields.get(b"reason", b"")),
                raw_base64=base64.b64encode(raw[:RAW_SHOWN_BYTES]).decode(),
                truncated=len(raw) > RAW_SHOWN_BYTES,
            )
        )
    return DeadLetters(key=DEAD_LETTERS, count=count, maxlen=DEAD_LETTER_MAXLEN, last=last)


@routes.route(
    "GET",
    "/api/v1/system",
    tags=TAG,
    role=Role.ADMIN,
    query=SystemQuery,
    response=SystemReport,
    errors=(403,),
)
async def system_report(call: ApiRequest[SystemQuery, None]) -> SystemReport:
    """Pipeline state (admins)

    The event stream's length and bounds; each consumer group with its consumers, pending
    entries and lag; the dead-letter count and newest entries (`deadLetters` of them);
    the recorder's published lag; the service instances and workers alive now.
    """
    redis = call.app[REDIS]
    now = now_ms()
    lag = await read_recorder_lag(redis)
    workers = await live_workers(redis, now)
    return SystemReport(
        ts=now,
        stream=await _stream(redis, call.app[SETTINGS].stream_maxlen),
        groups=await _groups(redis),
        dead_letters=await _dead_letters(redis, call.query.dead_letters),
        recorder=RecorderInfo(
            behind=lag.behind,
            lag=lag.lag,
            pending=lag.pending,
            consumers=lag.consumers,
            events_per_s=lag.events_per_s,
            updated_at=lag.updated_at,
            instance=lag.instance,
        )
        if lag is not None
        else None,
        instances=[InstanceInfo.model_validate(vars(i)) for i in await seen_instances(redis)],
        workers=[
            WorkerInfo(
                instance=w.instance, queues=w.queues, concurrency=w.concurrency, active=w.active
            )
            for w in workers
        ],
    )
