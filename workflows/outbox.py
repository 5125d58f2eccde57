"""The outbox: events written with the change, delivered after commit, at least once.

Right after commit the process that wrote the events pushes them (`outbox_push`) and
marks them delivered (in batches while pushes follow each other: workflows.outbox_marks).
Until then they carry a short lease (`available_at` in the future), so the relay
(`outbox_relay_once`, run by `manage.py outbox_relay` or inside the embedded ASGI
process) leaves them alone; it only picks up what a push could not
deliver (a failure, or a process that died between commit and push), with backoff,
until an event succeeds or is moved to the dead-letter state. Several relays can run
side by side on PostgreSQL: each claims rows with SKIP LOCKED.

How events reach Channels and Celery (one pipelined Redis round trip in production) is
workflows.delivery; this module writes them, records each outcome, and relays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from workflows import outbox_marks, sql
from workflows.delivery import RELAY_MESSAGE_TYPE, events_deliver
from workflows.models import OutboxEvent

__all__ = [
    "RELAY_MESSAGE_TYPE",
    "RelayResult",
    "channel_event",
    "channel_layer_hosted",
    "outbox_purge",
    "outbox_push",
    "outbox_relay_drain",
    "outbox_relay_once",
    "outbox_retry_dead",
    "outbox_task_done",
    "outbox_tasks_resume",
    "outbox_write",
    "task_event",
]

logger = logging.getLogger(__name__)

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


def outbox_write(events: Iterable[OutboxEvent], *, writes: sql.Writes | None = None) -> list[UUID]:
    """Insert `events` in the current transaction and push them as soon as it commits.

    Precondition: called inside the transaction that makes the change the events report
    (once per transaction: one INSERT, one push). Side effect: registers an on-commit
    push (never runs if the transaction rolls back). Events this process cannot deliver
    (channel events where the in-memory layer lives in another process) are due for the
    relay at once; the others wait out the push lease. With `writes`, the INSERT is
    added to them (the caller runs them in the same transaction).
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
    if writes is None:
        sql.rows_insert(rows)
    else:
        writes.insert(rows)
    if pushed:
        transaction.on_commit(lambda: outbox_push(events=pushed), robust=True)
    return [row.id for row in rows]


def channel_event(*, group: str, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.CHANNEL, destination=group, payload={"topic": topic, **payload})


def task_event(*, task: str, kwargs: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(kind=OutboxEvent.Kind.TASK, destination=task, payload={"kwargs": kwargs})


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


FINISHED = outbox_marks.FINISHED


def _deliver_and_record(events: list[OutboxEvent], *, batched: bool = False) -> RelayResult:
    """Deliver `events` and record each outcome on its row.

    Rows are either locked by the caller (the relay) or still under the push lease (the
    push), so no one else is delivering them; a late push (its lease ran out) never
    touches a row that a relay has meanwhile delivered. `batched` (the push): the marks
    may wait to be written with those of the pushes that follow (workflows.outbox_marks).
    """
    result = RelayResult()
    now = timezone.now()
    delivered: list[UUID] = []
    failed: list[OutboxEvent] = []
    for event, exc in zip(events, events_deliver(events), strict=True):
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
    if delivered and batched:
        result.delivered = outbox_marks.marks_add(delivered, at=now)
    elif delivered:
        result.delivered = outbox_marks.marks_write(delivered, at=now)
    if failed:
        OutboxEvent.objects.exclude(status__in=FINISHED).bulk_update(
            failed, ["status", "attempts", "available_at", "last_error"]
        )
    return result


def outbox_push(*, events: list[OutboxEvent]) -> RelayResult:
    """Deliver events this process has just committed, and mark them delivered.

    Called right after the commit that wrote them, with the rows still in memory: no
    read, no lock, one UPDATE, alone or shared with the pushes that follow within
    OUTBOX_MARK_BATCH_SECONDS (workflows.outbox_marks). Never raises: whatever fails is
    rescheduled for the relay (and if this process dies first, the relay takes the events
    when their lease ends).
    """
    try:
        return _deliver_and_record(events, batched=True)
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


def outbox_task_done(*, event_id: str) -> None:
    """Record that the task of outbox event `event_id` (its Celery task id) ran to its end,
    so `outbox_tasks_resume` leaves it alone. One UPDATE; nothing when it is no event
    (a task sent by other means than the outbox has an id of another form)."""
    try:
        key = UUID(str(event_id))
    except ValueError:
        return
    OutboxEvent.objects.filter(pk=key, kind=OutboxEvent.Kind.TASK, done_at__isnull=True).update(
        done_at=timezone.now()
    )


def outbox_tasks_resume(*, tasks: Iterable[str], overdue: timedelta, limit: int = 500) -> int:
    """Hand again to the relay the events of `tasks` delivered more than `overdue` ago
    whose task never reported its end: the broker lost them (a Redis without persistence
    restarted while they were queued). Only for tasks that call `outbox_task_done` and
    de-duplicate by their event id, since a slow task may still be running. The events go
    back to pending, due now; the relay delivers them. Returns how many."""
    now = timezone.now()
    with transaction.atomic():
        lost = OutboxEvent.objects.filter(
            kind=OutboxEvent.Kind.TASK,
            status=OutboxEvent.Status.DELIVERED,
            done_at__isnull=True,
            destination__in=list(tasks),
            delivered_at__lt=now - overdue,
        )
        ids = list(lost.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        if ids:
            OutboxEvent.objects.filter(pk__in=ids).update(
                status=OutboxEvent.Status.PENDING, available_at=now, delivered_at=None
            )
    if ids:
        logger.warning("%s task event(s) delivered but never done were handed to the relay again", len(ids))
    return len(ids)
