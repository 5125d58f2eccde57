"""The audit trail: append-only, hash-chained per instance (see workflows.audit)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("The audit trail is append-only: entries cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The audit trail is append-only: entries cannot be deleted.")

    def for_instance(self, instance: models.Model) -> AuditEntryQuerySet:
        return self.filter(
            content_type=ContentType.objects.get_for_model(instance), object_id=str(instance.pk)
        )


class AuditEntry(models.Model):
    """One recorded change to a workflow instance: a transition or a handoff change.

    `hash` covers every field and `prev_hash`, the hash of the instance's previous entry,
    so a changed, removed or re-ordered entry breaks the chain (see workflows.audit).
    Append-only here in the ORM and, on PostgreSQL, by a trigger (migration 0002).
    """

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        TRANSITION = "transition", "Transition"
        HANDOFF = "handoff", "Handoff"
        NOTE = "note", "Note"

    # No single-column index on these three keys: audit_entry_chain_position, audit_by_actor
    # and audit_by_behalf lead with them and serve the same lookups (PROTECT checks too);
    # each extra index cost every appended entry a B-tree insert (issue 6).
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+", db_index=False)
    object_id = models.CharField(max_length=64)
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    action = models.CharField(max_length=100)
    source = models.CharField(max_length=50, blank=True)
    target = models.CharField(max_length=50, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    comment = models.TextField(blank=True)
    data = models.JSONField(default=dict)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "audit entries"
        # Related-object access and internal deletes go through the base manager: it must
        # refuse updates and deletes as `objects` does.
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "seq"], name="audit_entry_chain_position"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_by_time"),
            models.Index(fields=["actor", "created_at"], name="audit_by_actor"),
            # The auditors' log (newest first, keyset on created_at, id) by each filter
            # that can stand alone: on whose behalf, which action, the system's own.
            models.Index(
                fields=["on_behalf_of", "created_at"],
                condition=models.Q(on_behalf_of__isnull=False),
                name="audit_by_behalf",
            ),
            models.Index(fields=["action", "created_at"], name="audit_by_action"),
            models.Index(
                fields=["created_at", "id"], condition=models.Q(actor__isnull=True), name="audit_by_system"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} #{self.seq} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            raise AppendOnlyError("The audit trail is append-only: entries cannot be updated.")
        # Always an INSERT: a new object carrying an existing id would otherwise UPDATE that
        # row (Django tries an UPDATE first when the primary key is set) and rewrite history.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The audit trail is append-only: entries cannot be deleted.")
