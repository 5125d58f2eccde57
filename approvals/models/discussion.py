"""What people say and add on a request beside its decisions: comments and attachments."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone

from approvals.models.requests import ApprovalRequest


def attachment_storage() -> Storage:
    """Where attachments are kept: outside the web root (settings.STORAGES['attachments']);
    they are served only through the request's own view, to people who may see it."""
    return storages["attachments"]


class Comment(models.Model):
    """A message on a request's thread (not a decision)."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "id"]
        indexes = [models.Index(fields=["request", "id"], name="comment_by_request")]

    def __str__(self) -> str:
        return f"{self.author}: {self.body[:40]}"


class Attachment(models.Model):
    """A file added to a request (alone, or with a comment), checked for size and type."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(storage=attachment_storage, upload_to="requests/%Y/%m/", max_length=300)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "id"]
        indexes = [models.Index(fields=["request", "id"], name="attachment_by_request")]

    def __str__(self) -> str:
        return self.name
