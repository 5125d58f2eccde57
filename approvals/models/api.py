"""What the REST API keeps of its own: the answers to POSTs made with an Idempotency-Key."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotentRequest(models.Model):
    """One POST made with an `Idempotency-Key`, per caller: a digest of what it asked and,
    once done, the answer it got (replayed to a retry with the same key and body).

    The row is inserted (and committed) before the work starts, so a concurrent retry sees
    it while `status` is still None and is told to wait (409). Kept 24 hours.
    """

    caller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    body_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotent_request_per_caller"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_by_age")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"
