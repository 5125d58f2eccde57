"""How outbox events reach their destinations: Channels groups and Celery tasks.

With channels-redis's pub/sub layer on one Redis (production), a push publishes all of
its channel messages exactly as the layer's own `group_send` would (the layer's
serialisation, to '<prefix>__group__<group>') and, where the Celery broker is that same
Redis, LPUSHes the task messages Celery itself builds, in kombu's envelope: one pipelined
round trip on a connection this process keeps. Otherwise channel events go out through
the layer's `group_send` and tasks through Celery's `send_task`. Each event's outcome is
returned on its own (workflows.outbox records them).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID, uuid4

import redis
from asgiref.sync import async_to_sync
from celery import current_app
from celery.utils.saferepr import saferepr
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from kombu import serialization
from kombu.exceptions import OperationalError
from redis.exceptions import NoScriptError

from workflows import live
from workflows.live import RELAY_MESSAGE_TYPE, memory_streams, stream_is_numbered
from workflows.models import OutboxEvent

__all__ = ["RELAY_MESSAGE_TYPE", "channel_send_now", "events_deliver"]

_T = TypeVar("_T")
# What kombu raises when the broker cannot be reached (as opposed to one bad task).
BROKER_UNREACHABLE = (OperationalError, ConnectionError, OSError, TimeoutError)


def _event_body(event: OutboxEvent) -> dict[str, Any]:
    return {"id": str(event.id), **event.payload}


def _channel_message(event: OutboxEvent) -> dict[str, Any]:
    return {"type": RELAY_MESSAGE_TYPE, "event": _event_body(event)}


def _numbered_message(event: OutboxEvent) -> dict[str, Any]:
    """The message for a layer other than Redis pub/sub: numbered here, in this process
    (the embedded mode, where this process also serves the sockets)."""
    message = _channel_message(event)
    if stream_is_numbered(event.destination):
        epoch, seq = memory_streams.stamp(event.destination, message["event"])
        message.update(stream=event.destination, epoch=epoch, seq=seq)
    return message


def _publish_task(event: OutboxEvent) -> None:
    """Publish one task event to the Celery broker. Raises on failure."""
    # The event id is the task id, so a task delivered twice can tell.
    current_app.send_task(event.destination, kwargs=event.payload.get("kwargs", {}), task_id=str(event.id))


def _redis_broker() -> str | None:
    """The broker's URL when it is a Redis whose default queue takes every task."""
    url = str(current_app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://")) or current_app.conf.task_routes:
        return None
    return url


@dataclass(frozen=True)
class _Celery:
    """What the task messages of one push read of Celery's configuration, read once per
    push (each read of `current_app.conf` goes through a proxy and chained mappings)."""

    app: Any
    serializer: str
    queue: str
    repr_size: int
    repr_levels: int

    @classmethod
    def now(cls) -> _Celery:
        app: Any = current_app  # one read through the proxy per attribute, once per push
        conf = app.conf
        return cls(
            app=app,
            serializer=conf.task_serializer,
            queue=conf.task_default_queue,
            repr_size=app.amqp.kwargsrepr_maxsize,
            repr_levels=conf.task_repr_maxlevels,
        )


def _log_repr(value: Any, celery: _Celery) -> str:
    """What Celery's `saferepr` writes for a task's `argsrepr` / `kwargsrepr` header (only
    the worker's log reads it). For the short, shallow, plain JSON values of our events
    that is exactly `repr`, at a fraction of saferepr's cost; anything else goes through
    saferepr itself, so the header is the same either way (tests/workflows/test_task_message)."""
    limit, levels = celery.repr_size, celery.repr_levels
    if _plain_depth(value) <= levels:
        text = repr(value)
        if len(text) < limit:
            return text
    return saferepr(value, limit, maxlevels=levels)


_NOT_PLAIN = 1_000


def _plain_depth(value: Any) -> int:
    """How deep dicts and lists nest in `value` (a scalar: 0), or _NOT_PLAIN when it holds
    anything saferepr writes unlike repr: another type, or a string with a quote, a
    backslash or an unprintable character (saferepr quotes strings its own way)."""
    if isinstance(value, str):
        return 0 if value.isprintable() and "'" not in value and "\\" not in value else _NOT_PLAIN
    if value is None or isinstance(value, bool | int | float):
        return 0
    if isinstance(value, dict):
        if not value:
            return 1
        return 1 + max(max(_plain_depth(k), _plain_depth(v)) for k, v in value.items())
    if isinstance(value, list):
        return 1 + max((_plain_depth(v) for v in value), default=0)
    return _NOT_PLAIN


def _task_message(event: OutboxEvent, celery: _Celery | None = None) -> bytes:
    """What kombu's Redis transport LPUSHes for this task on the default queue: Celery's
    own protocol-2 message (`amqp.as_task_v2`), serialised by kombu, in the envelope of
    kombu's virtual transport (tests/integration: a real worker runs it)."""
    celery = celery or _Celery.now()
    task_id = str(event.id)  # the event id is the task id: a task delivered twice can tell
    kwargs = event.payload.get("kwargs", {})
    message = celery.app.amqp.as_task_v2(
        task_id,
        event.destination,
        args=(),
        kwargs=kwargs,
        argsrepr="()",
        kwargsrepr=_log_repr(kwargs, celery),
    )
    content_type, encoding, body = serialization.dumps(message.body, serializer=celery.serializer)
    raw = body if isinstance(body, bytes) else body.encode(encoding or "utf-8")
    envelope = {
        "body": base64.b64encode(raw).decode("ascii"),
        "content-encoding": encoding,
        "content-type": content_type,
        "headers": message.headers,
        "properties": {
            **message.properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": celery.queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid4()),
        },
    }
    return json.dumps(envelope).encode("utf-8")


# --- channel events ------------------------------------------------------------------------


async def _group_send_each(layer: Any, events: list[OutboxEvent]) -> list[Exception | None]:
    """Send channel events one after the other on one event loop; each one's failure, or None."""
    outcomes: list[Exception | None] = []
    for event in events:
        try:
            await layer.group_send(event.destination, _numbered_message(event))
        except Exception as exc:  # recorded per event, as for any destination
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


class _SenderLoop:
    """One long-lived event loop per process, in a daemon thread, for a layer that only
    speaks asyncio (e.g. channels-redis's core layer): its connections stay open between
    pushes instead of a new loop and connection per push."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._running()).result()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child inherits the loop object but not its thread: start its own.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="outbox-channel-sender", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_sender_loop = _SenderLoop()


class _Publisher:
    """A synchronous Redis connection per process for the pub/sub layer's messages.

    Publishes what `RedisPubSubChannelLayer.group_send` publishes (the layer's own
    serialisation, to '<prefix>__group__<group>'), all of one push in one pipeline.
    """

    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self._key: tuple[int, str] = (0, "")
        self._script: Any = None

    def client(self, url: str) -> redis.Redis:
        key = (os.getpid(), url)
        if self._client is None or self._key != key:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT, socket_timeout=5
            )
            self._key = key
            self._script = None
        return self._client

    def stamp_script(self) -> Any:
        """workflows.live's stamp script on the current client (loaded on first use)."""
        if self._script is None:
            assert self._client is not None  # client() comes first
            self._script = live.stamp_script(self._client)
        return self._script


_publisher = _Publisher()
# Checks group names as every channel layer does (the pub/sub layer's group_send does not).
_NAMES = BaseChannelLayer()


def _pubsub_target(layer: Any) -> tuple[str, str] | None:
    """(Redis URL, channel prefix) when this process can publish the layer's messages and
    number them in Redis itself (workflows.live)."""
    return live.pubsub_target(layer) if live.numbered_in_redis(layer) else None


# A channel message ready for Redis: PUBLISHed as is (bytes), or numbered, logged and
# published by workflows.live's stamp script (its KEYS and ARGV).
Stamped = tuple[list[str], list[Any]]
ChannelOut = tuple[OutboxEvent, str, bytes | Stamped]


def _publish_pipelined(
    *, url: str, channel: list[ChannelOut], tasks: list[OutboxEvent]
) -> list[Exception | None]:
    """PUBLISH channel messages (numbering those of live streams in the same script call)
    and, where the broker is this same Redis, LPUSH task messages: one round trip for all.
    A task whose message cannot be built, or a command Redis refuses, fails alone; a Redis
    failure fails them all. Outcomes: channel events first, then tasks."""
    outcomes: list[Exception | None] = [None] * (len(channel) + len(tasks))
    client = _publisher.client(url)
    pipe = client.pipeline(transaction=False)
    script = _publisher.stamp_script() if any(not isinstance(m, bytes) for _, _, m in channel) else None
    queued: list[int] = []  # the outcome index of each command in the pipeline
    for index, (_, key, message) in enumerate(channel):
        if isinstance(message, bytes):
            pipe.publish(key, message)
        else:
            assert script is not None  # made above for any numbered message
            # EVALSHA straight away: a registered script would make the pipeline ask Redis
            # SCRIPT EXISTS first, one more round trip on every push; NOSCRIPT is handled below.
            pipe.evalsha(script.sha, len(message[0]), *message[0], *message[1])
        queued.append(index)
    celery = _Celery.now() if tasks else None
    for offset, event in enumerate(tasks, start=len(channel)):
        assert celery is not None
        try:
            body = _task_message(event, celery)
        except Exception as exc:  # this task's own fault: recorded for it alone
            outcomes[offset] = exc
            continue
        pipe.lpush(celery.queue, body)
        queued.append(offset)
    if not queued:
        return outcomes
    try:
        replies = pipe.execute(raise_on_error=False)
        unloaded = [i for i, r in zip(queued, replies, strict=True) if isinstance(r, NoScriptError)]
        if unloaded:  # a Redis that restarted (or never ran it): load it once, run those again
            assert script is not None
            script.sha = client.script_load(script.script)
            again = client.pipeline(transaction=False)
            for index in unloaded:
                stamped = channel[index][2]
                assert not isinstance(stamped, bytes)  # only numbered messages are scripted
                again.evalsha(script.sha, len(stamped[0]), *stamped[0], *stamped[1])
            retried = dict(zip(unloaded, again.execute(raise_on_error=False), strict=True))
            replies = [retried.get(i, r) for i, r in zip(queued, replies, strict=True)]
    except Exception as exc:  # Redis itself failed: every queued event with it
        # As kombu reports an unreachable broker, so tasks say what failed them.
        broker_error = OperationalError(str(exc))
        for index in queued:
            outcomes[index] = exc if index < len(channel) else broker_error
        return outcomes
    for index, reply in zip(queued, replies, strict=True):
        if isinstance(reply, Exception):  # a command Redis refused: its event alone
            outcomes[index] = reply
    return outcomes


def _pubsub_messages(
    layer: Any, prefix: str, events: list[OutboxEvent]
) -> tuple[list[ChannelOut], dict[UUID, Exception]]:
    """Each channel event as the pub/sub layer publishes it: (event, Redis channel, bytes or
    the stamp script's arguments); and the events the layer would refuse (a bad group name,
    an unserialisable message)."""
    ready: list[ChannelOut] = []
    refused: dict[UUID, Exception] = {}
    for event in events:
        try:
            _NAMES.require_valid_group_name(event.destination)
            key = f"{prefix}__group__{event.destination}"
            if stream_is_numbered(event.destination):
                stamped = live.stamp_args(prefix=prefix, stream=event.destination, event=_event_body(event))
                ready.append((event, key, stamped))
            else:
                ready.append((event, key, layer.serialize(_channel_message(event))))
        except Exception as exc:  # this event's own fault: recorded for it alone
            refused[event.id] = exc
    return ready, refused


def _deliver_channel_run(events: list[OutboxEvent]) -> list[Exception | None]:
    """Deliver channel events through a layer that only speaks asyncio; outcomes per event."""
    layer = get_channel_layer()
    if layer is None:
        return [RuntimeError("no channel layer is configured") for _ in events]
    try:
        if isinstance(layer, InMemoryChannelLayer):
            return async_to_sync(_group_send_each)(layer, events)
        return _sender_loop.run(_group_send_each(layer, events))
    except Exception as exc:  # the hop itself failed: every event of the run failed with it
        return [exc for _ in events]


def _publish_tasks(tasks: list[OutboxEvent]) -> dict[UUID, Exception | None]:
    """Publish task events through Celery, one by one. Once the broker is unreachable the
    rest are not tried: each attempt would block for the connection timeout."""
    outcome: dict[UUID, Exception | None] = {}
    broker_error: Exception | None = None
    for event in tasks:
        if broker_error is not None:
            outcome[event.id] = broker_error
            continue
        try:
            _publish_task(event)
        except Exception as exc:  # any failure of a destination keeps the event for later
            outcome[event.id] = exc
            if isinstance(exc, BROKER_UNREACHABLE):
                broker_error = exc
        else:
            outcome[event.id] = None
    return outcome


def events_deliver(events: list[OutboxEvent]) -> list[Exception | None]:
    """Deliver events; each one's failure, or None when it went out.

    With the pub/sub layer on Redis, channel events (and task events, where the broker is
    that same Redis) go out in one pipelined round trip; otherwise channel events go out
    together through the layer and tasks one by one through Celery.
    """
    outcome: dict[UUID, Exception | None] = {}
    channel = [e for e in events if e.kind == OutboxEvent.Kind.CHANNEL]
    tasks = [e for e in events if e.kind == OutboxEvent.Kind.TASK]
    for event in events:
        if event.kind not in (OutboxEvent.Kind.CHANNEL, OutboxEvent.Kind.TASK):
            outcome[event.id] = ValueError(f"unknown outbox event kind {event.kind!r}")
    layer = get_channel_layer() if channel else None
    target = _pubsub_target(layer) if layer is not None else None
    broker = _redis_broker()
    if target is not None:
        url, prefix = target
        ready, refused = _pubsub_messages(layer, prefix, channel)
        outcome.update(refused)
        piped = tasks if broker == url else []
        results = _publish_pipelined(url=url, channel=ready, tasks=piped)
        outcome.update(zip([e.id for e, _, _ in ready] + [t.id for t in piped], results, strict=True))
        tasks = [t for t in tasks if t not in piped]
    elif channel:
        outcome.update(zip([e.id for e in channel], _deliver_channel_run(channel), strict=True))
    if tasks and broker is not None:
        outcome.update(
            zip([t.id for t in tasks], _publish_pipelined(url=broker, channel=[], tasks=tasks), strict=True)
        )
        tasks = []
    outcome.update(_publish_tasks(tasks))
    return [outcome[e.id] for e in events]


def channel_send_now(*, groups: list[str], message: dict[str, Any]) -> None:
    """Send one un-numbered control message to Channels groups now (not through the
    outbox: a control message lost while Redis is down is covered by the sockets'
    periodic re-check). Raises when the layer cannot be reached."""
    layer = get_channel_layer()
    if layer is None or not groups:
        return
    target = _pubsub_target(layer)
    if target is not None:
        url, prefix = target
        pipe = _publisher.client(url).pipeline(transaction=False)
        for group in groups:
            pipe.publish(f"{prefix}__group__{group}", layer.serialize(message))
        pipe.execute()
        return

    async def send_each() -> None:
        for group in groups:
            await layer.group_send(group, message)

    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(send_each)()
    else:
        _sender_loop.run(send_each())
