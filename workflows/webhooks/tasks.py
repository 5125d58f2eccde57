"""Celery tasks of webhooks. Thin: each calls one function of workflows.webhooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings

from workflows.webhooks.events import DELIVER_TASK, FANOUT_TASK, webhook_fanout, webhook_fanouts_resume
from workflows.webhooks.sending import (
    webhook_deliveries_purge,
    webhook_deliveries_resume,
    webhook_delivery_attempt,
)


# Acknowledged only once done: a worker lost mid-way leaves it to another, and the
# fan-out's marker makes that second run a no-op if the first one had committed.
@shared_task(name=FANOUT_TASK, acks_late=True)
def webhook_fanout_task(event_id: str, model: str, instance_id: Any, types: list[str], **step: Any) -> int:
    """Write the deliveries of one committed step (see workflows.webhooks.events)."""
    return webhook_fanout(event_id=event_id, model=model, instance_id=instance_id, types=types, **step)


@shared_task(name=DELIVER_TASK)
def webhook_deliver_task(delivery_id: str) -> str:
    """Make one attempt of a webhook delivery (a no-op unless it is pending and due)."""
    return webhook_delivery_attempt(delivery_id=delivery_id).result


@shared_task(name="workflows.webhook_resume")
def webhook_resume_task() -> int:
    """Queue again fan-outs and deliveries whose task was lost (beat: every few minutes)."""
    overdue = timedelta(seconds=settings.WEBHOOK_RESUME_AFTER)
    return webhook_fanouts_resume(overdue=overdue) + webhook_deliveries_resume(overdue=overdue)


@shared_task(name="workflows.webhook_purge")
def webhook_purge_task() -> int:
    """Delete finished deliveries older than WEBHOOK_KEEP_DAYS (beat: daily)."""
    return webhook_deliveries_purge(older_than=timedelta(days=settings.WEBHOOK_KEEP_DAYS))
