"""The outbox: events written with the change, delivered after commit, at least once.

Right after commit the process that wrote the events pushes them (`outbox_push`) and
marks them delivered. Until then they carry a short lease (`available_at` in the
future), so the relay (`outbox_relay_once`, run by `manage.py outbox_relay` or inside
the embedded ASGI process) leaves them alone; it only picks up what a push could not
deliver (a failure, or a process that died between commit and push), with backoff,
until an event succeeds or is moved to the dead-letter state. Several relays can run
side by side on PostgreSQL: each claims rows with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError

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

    Precondition: called inside the transaction that makes the change the events report.
    Side effect: registers an on-commit push (never runs if the transaction rolls back).
    Events this process cannot deliver (channel events where the in-memory layer lives in
    another process) are due for the relay at once; the others wait out the push lease.
    """
    rows = list(events)
    if not rows:
        return []
    now = timezone.now()
    lease_end = now + timedelta(seconds=settings.OUTBOX_PUSH_LEASE)
    channels_here = _channel_events_deliverable()
    pushed = []
    for row in rows:
        if row.kind == OutboxEvent.Kind.CHANNEL and not channels_here:
            row.available_at = now
        else:
            row.available_at = lease_end
            pushed.append(row)
    OutboxEvent.objects.bulk_create(rows)
    if pushed:
        transaction.on_commit(lambda: outbox_push(events=pushed), robust=True)
    return [row.id for row in rows]


def channel_event(*, group: str, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.CHANNEL, destination=group, payload={"topic": topic, **payload})


def task_event(*, task: str, kwargs: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.TASK, destination=task, payload={"kwargs": kwargs})


def _channel_message(event: OutboxEvent) -> dict[str, Any]:
    return {"type": RELAY_MESSAGE_TYPE, "event": {"id": str(event.id), **event.payload}}


def _deliver(event: OutboxEvent) -> None:
    """Send one event that is not a channel event (those go out in runs, see _deliver_each).

    Raises on failure.
    """
    if event.kind == OutboxEvent.Kind.TASK:
        from config.celery import app

        # The event id is the task id, so a task delivered twice can tell.
        app.send_task(event.destination, kwargs=event.payload.get("kwargs", {}), task_id=str(event.id))
    else:
        raise ValueError(f"unknown outbox event kind {event.kind!r}")


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
    """One long-lived event loop per process, in a daemon thread, for an out-of-process layer.

    async_to_sync outside an ASGI server starts a thread and an event loop per call, and
    channels-redis opens a new connection for every loop: that was most of the cost of a
    transition (bench/transitions). Here the loop, and so the layer's connections, stay.
    Not for the in-memory layer, whose queues belong to the loop of the server process.
    """

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


def _deliver_channel_run(events: list[OutboxEvent]) -> list[Exception | None]:
    """Deliver consecutive channel events in one hop into async code; outcomes per event."""
    layer = get_channel_layer()
    if layer is None:
        return [RuntimeError("no channel layer is configured") for _ in events]
    try:
        if isinstance(layer, InMemoryChannelLayer):
            return async_to_sync(_group_send_each)(layer, events)
        return _sender_loop.run(_group_send_each(layer, events))
    except Exception as exc:  # the hop itself failed: every event of the run failed with it
        return [exc for _ in events]


def _deliver_each(events: list[OutboxEvent]) -> list[Exception | None]:
    """Deliver events in order; each one's failure, or None when it went out.

    Once a task cannot be published because the broker is unreachable, the batch's later
    tasks are not tried: each attempt would block for the connection timeout.
    """
    outcomes: list[Exception | None] = []
    run: list[OutboxEvent] = []
    broker_error: Exception | None = None
    for event in [*events, None]:
        if event is not None and event.kind == OutboxEvent.Kind.CHANNEL:
            run.append(event)
            continue
        if run:
            outcomes += _deliver_channel_run(run)
            run = []
        if event is None:
            break
        if broker_error is not None:
            outcomes.append(broker_error)
            continue
        try:
            _deliver(event)
        except Exception as exc:  # any failure of a destination keeps the event for later
            outcomes.append(exc)
            if event.kind == OutboxEvent.Kind.TASK and isinstance(exc, BROKER_UNREACHABLE):
                broker_error = exc
        else:
            outcomes.append(None)
    return outcomes


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
    # Rows a relay finished meanwhile are left alone. Written as "not finished" rather than
    # "status = 'pending'", which would let PostgreSQL scan the partial index of every
    # pending event (a large backlog after an outage) instead of going by primary key.
    unfinished = OutboxEvent.objects.exclude(
        status__in=[OutboxEvent.Status.DELIVERED, OutboxEvent.Status.DEAD]
    )
    if delivered:
        # One plain UPDATE for all of them (bulk_update would build a CASE per row).
        result.delivered = unfinished.filter(id__in=delivered).update(
            status=OutboxEvent.Status.DELIVERED, delivered_at=now, attempts=F("attempts") + 1
        )
    if failed:
        unfinished.bulk_update(failed, ["status", "attempts", "available_at", "last_error"])
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
