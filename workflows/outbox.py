"""The outbox: events written with the change, delivered after commit, at least once.

Right after commit the service pushes the events it wrote (`outbox_push`); the relay
(`outbox_relay_once`, run by `manage.py outbox_relay` or inside the embedded ASGI
process) only picks up what that push could not deliver, with backoff, until an event
succeeds or is moved to the dead-letter state. Several relays can run side by side on
PostgreSQL: each claims rows with SKIP LOCKED.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from workflows.models import OutboxEvent

logger = logging.getLogger(__name__)

RELAY_MESSAGE_TYPE = "relay.event"

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
    """
    rows = list(events)
    if not rows:
        return []
    OutboxEvent.objects.bulk_create(rows)
    ids = [row.id for row in rows]
    transaction.on_commit(lambda: outbox_push(event_ids=ids), robust=True)
    return ids


def channel_event(*, group: str, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.CHANNEL, destination=group, payload={"topic": topic, **payload})


def task_event(*, task: str, kwargs: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.TASK, destination=task, payload={"kwargs": kwargs})


def _deliver(event: OutboxEvent) -> None:
    """Send one event to its destination. Raises on failure."""
    if event.kind == OutboxEvent.Kind.CHANNEL:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer is configured")
        message = {"type": RELAY_MESSAGE_TYPE, "event": {"id": str(event.id), **event.payload}}
        async_to_sync(layer.group_send)(event.destination, message)
    elif event.kind == OutboxEvent.Kind.TASK:
        from config.celery import app

        # The event id is the task id, so a task delivered twice can tell.
        app.send_task(event.destination, kwargs=event.payload.get("kwargs", {}), task_id=str(event.id))
    else:
        raise ValueError(f"unknown outbox event kind {event.kind!r}")


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


def _deliver_claimed(events: list[OutboxEvent]) -> RelayResult:
    """Deliver rows already locked by the caller and record each outcome."""
    result = RelayResult()
    now = timezone.now()
    for event in events:
        try:
            _deliver(event)
        except Exception as exc:  # any failure of a destination keeps the event for later
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
        else:
            event.status = OutboxEvent.Status.DELIVERED
            event.delivered_at = now
            event.attempts += 1
            result.delivered += 1
    OutboxEvent.objects.bulk_update(
        events, ["status", "attempts", "available_at", "delivered_at", "last_error"]
    )
    return result


def outbox_push(*, event_ids: list[UUID]) -> RelayResult:
    """Deliver these pending events now. Called right after the commit that wrote them.

    Never raises: whatever fails stays pending for the relay. Rows another relay is
    delivering at this moment are skipped (SKIP LOCKED), not waited for.
    """
    try:
        with transaction.atomic():
            events = list(
                _deliverable(OutboxEvent.objects.select_for_update(skip_locked=True))
                .filter(id__in=event_ids, status=OutboxEvent.Status.PENDING)
                .order_by("created_at")
            )
            return _deliver_claimed(events)
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
        return _deliver_claimed(events)


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
