"""The outbox: events written with the change, delivered after commit, at least once.

Right after commit the process that wrote the events pushes them (`outbox_push`) and
marks them delivered. Until then they carry a short lease (`available_at` in the
future), so the relay (`outbox_relay_once`, run by `manage.py outbox_relay` or inside
the embedded ASGI process) leaves them alone; it only picks up what a push could not
deliver (a failure, or a process that died between commit and push), with backoff,
until an event succeeds or is moved to the dead-letter state. Several relays can run
side by side on PostgreSQL: each claims rows with SKIP LOCKED.

Channel events go out through the configured channel layer. With channels-redis's
pub/sub layer (production) a push publishes all of its channel events in one pipelined
round trip on a connection this process keeps, exactly as the layer's own `group_send`
would publish each (tests/integration/test_outbox_delivery.py receives them through the
layer itself); any other layer gets one `group_send` per event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import redis
from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from kombu import serialization
from kombu.exceptions import OperationalError

from workflows import sql
from workflows.models import OutboxEvent

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

RELAY_MESSAGE_TYPE = "relay.event"
# What kombu raises when the broker cannot be reached (as opposed to one bad task).
BROKER_UNREACHABLE = (OperationalError, ConnectionError, OSError, TimeoutError)

# An in-memory channel layer exists only inside the process that serves the WebSockets
# (the embedded ASGI server). Any other process (Celery worker, management command)
# would "deliver" channel events into a layer nobody listens to, so there they stay
# pending for the server's relay. The server marks itself with `channel_layer_hosted()`.
_hosts_channel_layer = False


def channel_layer_hosted() -> None:
    """Declare that this process serves the WebSockets of an in-memory channel layer."""
    global _hosts_channel_layer  # noqa: PLW0603  (a process-wide fact, set once at startup)
    _hosts_channel_layer = True


def _channel_events_deliverable() -> bool:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    in_memory = backend.endswith("InMemoryChannelLayer")
    return not in_memory or _hosts_channel_layer or settings.OUTBOX_CHANNEL_LAYER_IN_PROCESS


def _deliverable(query: QuerySet[OutboxEvent]) -> QuerySet[OutboxEvent]:
    if _channel_events_deliverable():
        return query
    return query.exclude(kind=OutboxEvent.Kind.CHANNEL)


def outbox_write(events: Iterable[OutboxEvent]) -> list[UUID]:
    """Insert `events` in the current transaction and push them as soon as it commits.

    Precondition: called inside the transaction that makes the change the events report
    (once per transaction: one INSERT, one push). Side effect: registers an on-commit
    push (never runs if the transaction rolls back). Events this process cannot deliver
    (channel events where the in-memory layer lives in another process) are due for the
    relay at once; the others wait out the push lease.
    """
    rows = list(events)
    if not rows:
        return []
    now = timezone.now()
    lease_end = now + timedelta(seconds=settings.OUTBOX_PUSH_LEASE)
    channels_here = _channel_events_deliverable()
    pushed = []
    for row in rows:
        row.created_at = now
        if row.kind == OutboxEvent.Kind.CHANNEL and not channels_here:
            row.available_at = now
        else:
            row.available_at = lease_end
            pushed.append(row)
    sql.rows_insert(rows)
    if pushed:
        transaction.on_commit(lambda: outbox_push(events=pushed), robust=True)
    return [row.id for row in rows]


def channel_event(*, group: str, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.CHANNEL, destination=group, payload={"topic": topic, **payload})


def task_event(*, task: str, kwargs: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.TASK, destination=task, payload={"kwargs": kwargs})


def _channel_message(event: OutboxEvent) -> dict[str, Any]:
    return {"type": RELAY_MESSAGE_TYPE, "event": {"id": str(event.id), **event.payload}}


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


def _task_message(event: OutboxEvent) -> bytes:
    """What kombu's Redis transport LPUSHes for this task on the default queue: Celery's
    own protocol-2 message (`amqp.as_task_v2`), serialised by kombu, in the envelope of
    kombu's virtual transport (tests/integration: a real worker runs it)."""
    task_id = str(event.id)  # the event id is the task id: a task delivered twice can tell
    message = current_app.amqp.as_task_v2(
        task_id, event.destination, args=(), kwargs=event.payload.get("kwargs", {})
    )
    content_type, encoding, body = serialization.dumps(
        message.body, serializer=current_app.conf.task_serializer
    )
    raw = body if isinstance(body, bytes) else body.encode(encoding or "utf-8")
    envelope = {
        "body": base64.b64encode(raw).decode("ascii"),
        "content-encoding": encoding,
        "content-type": content_type,
        "headers": message.headers,
        "properties": {
            **message.properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": current_app.conf.task_default_queue},
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
            await layer.group_send(event.destination, _channel_message(event))
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

    def client(self, url: str) -> redis.Redis:
        key = (os.getpid(), url)
        if self._client is None or self._key != key:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT, socket_timeout=5
            )
            self._key = key
        return self._client


_publisher = _Publisher()
# Checks group names as every channel layer does (the pub/sub layer's group_send does not).
_NAMES = BaseChannelLayer()


def _pubsub_target(layer: Any) -> tuple[str, str] | None:
    """(Redis URL, channel prefix) when `layer` is the pub/sub layer on one Redis."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or []
    if len(hosts) != 1 or not isinstance(hosts[0], str):
        return None  # sharded or configured by dict: the layer's own group_send knows how
    return hosts[0], config.get("prefix", "asgi")


def _publish_pipelined(
    *, url: str, channel: list[tuple[OutboxEvent, str, bytes]], tasks: list[OutboxEvent]
) -> list[Exception | None]:
    """PUBLISH channel messages and, where the broker is this same Redis, LPUSH task
    messages: one round trip for all. A task whose message cannot be built fails alone;
    a Redis failure fails them all. Outcomes: channel events first, then tasks."""
    outcomes: list[Exception | None] = [None] * (len(channel) + len(tasks))
    pipe = _publisher.client(url).pipeline(transaction=False)
    queued = []
    for index, (_, key, message) in enumerate(channel):
        pipe.publish(key, message)
        queued.append(index)
    for offset, event in enumerate(tasks, start=len(channel)):
        try:
            body = _task_message(event)
        except Exception as exc:  # this task's own fault: recorded for it alone
            outcomes[offset] = exc
            continue
        pipe.lpush(current_app.conf.task_default_queue, body)
        queued.append(offset)
    if queued:
        try:
            pipe.execute()
        except Exception as exc:  # Redis itself failed: every queued event with it
            # As kombu reports an unreachable broker, so tasks say what failed them.
            broker_error = OperationalError(str(exc))
            for index in queued:
                outcomes[index] = exc if index < len(channel) else broker_error
    return outcomes


def _pubsub_messages(
    layer: Any, prefix: str, events: list[OutboxEvent]
) -> tuple[list[tuple[OutboxEvent, str, bytes]], dict[UUID, Exception]]:
    """Each channel event as the pub/sub layer publishes it: (event, Redis channel, bytes);
    and the events the layer would refuse (a bad group name, an unserialisable message)."""
    ready, refused = [], {}
    for event in events:
        try:
            _NAMES.require_valid_group_name(event.destination)
            ready.append(
                (event, f"{prefix}__group__{event.destination}", layer.serialize(_channel_message(event)))
            )
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


def _deliver_each(events: list[OutboxEvent]) -> list[Exception | None]:
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


# --- recording outcomes ------------------------------------------------------------------------


@dataclass
class RelayResult:
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: RelayResult) -> RelayResult:
        return RelayResult(
            self.delivered + other.delivered, self.retried + other.retried, self.dead + other.dead
        )


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, 300))


FINISHED = (OutboxEvent.Status.DELIVERED.value, OutboxEvent.Status.DEAD.value)


def _deliver_and_record(events: list[OutboxEvent]) -> RelayResult:
    """Deliver `events` and record each outcome on its row.

    Rows are either locked by the caller (the relay) or still under the push lease (the
    push), so no one else is delivering them; a late push (its lease ran out) never
    touches a row that a relay has meanwhile delivered.
    """
    result = RelayResult()
    now = timezone.now()
    delivered: list[UUID] = []
    failed: list[OutboxEvent] = []
    for event, exc in zip(events, _deliver_each(events), strict=True):
        if exc is None:
            delivered.append(event.id)
            continue
        event.attempts += 1
        event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if event.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            event.status = OutboxEvent.Status.DEAD
            result.dead += 1
            logger.error("outbox event %s is dead after %s attempts: %s", event.id, event.attempts, exc)
        else:
            event.available_at = now + _retry_delay(event.attempts)
            result.retried += 1
            logger.warning("outbox event %s failed (attempt %s): %s", event.id, event.attempts, exc)
        failed.append(event)
    if delivered:
        # One UPDATE by primary key for all of them. Rows a relay finished meanwhile are
        # left alone: "not finished" rather than "status = 'pending'", which would let
        # PostgreSQL scan the partial index of every pending event (a large backlog after
        # an outage) instead of going by primary key.
        ids, params = sql.in_list(OutboxEvent, "id", delivered)
        result.delivered = sql.rows_update(
            OutboxEvent,
            values={
                "status": OutboxEvent.Status.DELIVERED,
                "delivered_at": now,
                "attempts": sql.Raw("attempts + 1"),
            },
            where=f"{ids} AND status NOT IN (%s, %s)",
            params=[*params, *FINISHED],
        )
    if failed:
        OutboxEvent.objects.exclude(status__in=FINISHED).bulk_update(
            failed, ["status", "attempts", "available_at", "last_error"]
        )
    return result


def outbox_push(*, events: list[OutboxEvent]) -> RelayResult:
    """Deliver events this process has just committed, and mark them delivered.

    Called right after the commit that wrote them, with the rows still in memory: no
    read, no lock, one UPDATE. Never raises: whatever fails is rescheduled for the relay
    (and if this process dies first, the relay takes the events when their lease ends).
    """
    try:
        return _deliver_and_record(events)
    except Exception:
        logger.exception("outbox push failed; the relay will deliver these events")
        return RelayResult()


def outbox_relay_once(*, limit: int = 200) -> RelayResult:
    """Deliver up to `limit` pending events whose time has come. Safe to run concurrently."""
    with transaction.atomic():
        events = list(
            _deliverable(OutboxEvent.objects.select_for_update(skip_locked=True))
            .filter(status=OutboxEvent.Status.PENDING, available_at__lte=timezone.now())
            .order_by("available_at", "created_at")[:limit]
        )
        return _deliver_and_record(events)


def outbox_relay_drain(*, limit: int = 200, max_batches: int = 50) -> RelayResult:
    """Run the relay until nothing is due (or `max_batches` ran)."""
    total = RelayResult()
    for _ in range(max_batches):
        result = outbox_relay_once(limit=limit)
        total = total + result
        if result.delivered + result.retried + result.dead < limit:
            break
    return total


def outbox_retry_dead(*, event_ids: list[UUID] | None = None) -> int:
    """Put dead-letter events back in the queue (after the cause has been fixed)."""
    query = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD)
    if event_ids is not None:
        query = query.filter(id__in=event_ids)
    return query.update(
        status=OutboxEvent.Status.PENDING, attempts=0, available_at=timezone.now(), last_error=""
    )


def outbox_purge(*, older_than: timedelta) -> int:
    """Delete delivered events older than `older_than`; pending and dead ones stay."""
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxEvent.objects.filter(
        status=OutboxEvent.Status.DELIVERED, delivered_at__lt=cutoff
    ).delete()
    return deleted
