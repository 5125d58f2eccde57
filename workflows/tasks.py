"""Celery tasks of the engine. Thin: each calls one service function."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from workflows.checkpoints import checkpoint_create
from workflows.outbox import outbox_purge

# Celery finds tasks in each app's `tasks` module: the webhook tasks live in their package.
from workflows.webhooks.tasks import (
    webhook_deliver_task,
    webhook_fanout_task,
    webhook_purge_task,
    webhook_resume_task,
)

__all__ = [
    "audit_checkpoint_task",
    "outbox_purge_task",
    "webhook_deliver_task",
    "webhook_fanout_task",
    "webhook_purge_task",
    "webhook_resume_task",
]


@shared_task(name="workflows.outbox_purge")
def outbox_purge_task() -> int:
    """Delete delivered outbox events older than OUTBOX_KEEP_DELIVERED_DAYS."""
    return outbox_purge(older_than=timedelta(days=settings.OUTBOX_KEEP_DELIVERED_DAYS))


@shared_task(name="workflows.audit_checkpoint")
def audit_checkpoint_task() -> int:
    """Sign a checkpoint of the audit trail (beat: every AUDIT_CHECKPOINT_INTERVAL seconds)."""
    return checkpoint_create().pk
