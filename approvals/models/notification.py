"""In-app notifications (also sent by mail)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """A message sent to a person about a request (by mail, and listed in the app).

    `event_id` is the outbox event that caused it: a task delivered twice sends once.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    request = models.ForeignKey("ApprovalRequest", on_delete=models.CASCADE, related_name="notifications")
    event_id = models.CharField(max_length=64)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event_id", "recipient"], name="notification_once_per_event")
        ]
        indexes = [models.Index(fields=["recipient", "-id"], name="notification_by_recipient")]

    def __str__(self) -> str:
        return self.subject
