"""Inbox views a person saved: a name for a set of filters ("finance queue")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

SAVED_VIEW_NAME_MAX = 60


class SavedView(models.Model):
    """The inbox's filters under a name of its owner's choosing (`query`: the query string)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=SAVED_VIEW_NAME_MAX)
    query = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["owner", "name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_per_owner")]

    def __str__(self) -> str:
        return self.name
