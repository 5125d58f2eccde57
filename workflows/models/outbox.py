"""The outbox, and the keys that make a retried transition replay its first result."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from workflows.models.audit import AuditEntry


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change that caused it.

    Delivered after commit to a Channels group (`kind=channel`) or as a Celery task
    (`kind=task`), at least once: consumers de-duplicate by `id`.
    """

    class Kind(models.TextChoices):
        CHANNEL = "channel", "Channel group"
        TASK = "task", "Celery task"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    destination = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Set by a task that reports its end (`outbox_task_done`): a delivered task event
    # without it long after its delivery was lost with the broker's queue.
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at", "created_at"],
                condition=Q(status="pending"),
                name="outbox_pending",
            ),
            models.Index(fields=["delivered_at"], condition=Q(status="delivered"), name="outbox_delivered"),
            models.Index(
                fields=["destination", "delivered_at"],
                condition=Q(kind="task", status="delivered", done_at__isnull=True),
                name="outbox_task_undone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.destination} ({self.status})"


class IdempotencyKey(models.Model):
    """Remembers the outcome of a keyed transition so that a retry replays it."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    audit_entry = models.ForeignKey(AuditEntry, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["actor", "key"], name="idempotency_key_per_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id}:{self.key}"
