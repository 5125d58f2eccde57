"""Task completions: the work done in a request's task stages, and what it handed on."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from approvals.models.requests import ApprovalRequest


class TaskCompletion(models.Model):
    """One task stage of one revision done (`outputs` handed on, `note` for whoever holds
    the request next) or handed back as impossible (`note` says why, `target` where it
    went: the requester, not_fulfilled, or the earlier task stage to redo).

    `principal` is whose work it is; `actor` who recorded it (the same, or a delegate).
    """

    class Outcome(models.TextChoices):
        COMPLETED = "completed", "Completed"
        NOT_DONE = "not_done", "Could not be done"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="completions")
    revision = models.PositiveIntegerField()
    stage_index = models.PositiveSmallIntegerField()
    stage_name = models.CharField(max_length=50)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    outputs = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    target = models.CharField(max_length=50, blank=True)
    principal = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "id"]
        indexes = [models.Index(fields=["request", "revision"], name="completion_by_request_revision")]

    def __str__(self) -> str:
        return f"{self.stage_name}: {self.get_outcome_display()} by {self.principal}"
