"""Webhooks: who subscribed to which events, their signing secrets, and each delivery
with every attempt made for it. `workflows.webhooks.services` is the one writer."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class WebhookEventType(models.TextChoices):
    """The events a subscriber may choose. Value: the payload's `type`."""

    REQUEST_SUBMITTED = "request.submitted", "Request submitted"
    ACTION_TAKEN = "action.taken", "Action taken"
    HANDOFF_OPENED = "handoff.opened", "Handoff opened"
    REQUEST_ESCALATED = "request.escalated", "Escalated"
    REQUEST_EXPIRED = "request.expired", "Expired"
    REQUEST_DECIDED = "request.decided", "Decided"


class WebhookSubscription(models.Model):
    """An owner's endpoint for the events they chose, about items they may see."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_subscriptions"
    )
    target_url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "id"], name="webhook_sub_owner")]

    def __str__(self) -> str:
        return f"{self.target_url} ({self.owner_id})"


class WebhookSecret(models.Model):
    """A signing secret (`whsec_` + base64). Several sign at once during a rotation: the
    current one (`retires_at` None) and the ones being retired until `retires_at`.

    HMAC signing needs the key itself, so it is kept sealed (encrypted with a key derived
    from SECRET_KEY: a copy of the database alone cannot forge deliveries), opened only to
    sign; it is shown to the owner once.
    """

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="secrets")
    sealed = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"secret {self.pk} of subscription {self.subscription_id}"


class WebhookDelivery(models.Model):
    """One event for one endpoint (a subscription, or a request's own callback URL).

    Its id is the `webhook-id` header, the same on every attempt. Pending until a 2xx
    answer (delivered) or the last attempt of the retry schedule failed (dead).
    `lease_until` marks an attempt in flight: no one else sends it meanwhile.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        WebhookSubscription, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    target_url = models.URLField(max_length=500)
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    instance_ref = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Failed attempts since the delivery was (re)scheduled: indexes the retry schedule.
    failures = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    # The current round of attempts was asked for by the owner (a manual redelivery).
    manual = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["subscription", "-created_at", "-id"], name="webhook_delivery_log"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.target_url} ({self.status})"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: when, how long, what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    manual = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["delivery", "started_at"], name="webhook_attempt_log")]

    def __str__(self) -> str:
        return f"attempt {self.pk} of {self.delivery_id}"


class WebhookFanout(models.Model):
    """A fan-out task that has run: its outbox event id (the Celery task id).

    The fan-out task is acknowledged late, so a worker lost mid-way gets it delivered
    again; this row, inserted in the transaction that writes the deliveries, makes the
    second run a no-op instead of a second set of deliveries.
    """

    event_id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"fan-out {self.event_id}"
