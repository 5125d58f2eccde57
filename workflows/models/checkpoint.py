"""Signed checkpoints of the audit trail (see workflows.checkpoints)."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from workflows.models.audit import AppendOnlyError


class AppendOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Checkpoints are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Checkpoints are append-only: they cannot be deleted.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True
        base_manager_name = "objects"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("update_fields") is not None:
            raise AppendOnlyError("Checkpoints are append-only: they cannot be updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Checkpoints are append-only: they cannot be deleted.")


class AuditCheckpoint(AppendOnlyModel):
    """The state of every audit chain at one moment, signed.

    `statement` holds the exact bytes signed (canonical JSON: format, created_at, entries,
    chains, root, previous_root, key_id); `root` is the Merkle root over the heads of
    every chain (workflows.evidence_verifier). The heads themselves are kept in
    AuditCheckpointHead, only for chains that moved since the checkpoint before.
    """

    created_at = models.DateTimeField()
    entries = models.PositiveBigIntegerField()
    chains = models.PositiveIntegerField()
    root = models.CharField(max_length=64)
    previous_root = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=64)
    statement = models.TextField()
    signature = models.CharField(max_length=200)
    public_key = models.TextField(help_text="The PEM of the public key whose private key signed.")

    class Meta(AppendOnlyModel.Meta):
        ordering = ["-id"]
        indexes = [models.Index(fields=["created_at"], name="checkpoint_by_time")]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} of {self.created_at:%Y-%m-%d %H:%M} ({self.entries} entries)"


class AuditCheckpointHead(AppendOnlyModel):
    """A chain's head as a checkpoint signed it, written when the chain moved since the
    checkpoint before: a chain's head at checkpoint k is its row with the highest
    checkpoint id not above k."""

    checkpoint = models.ForeignKey(AuditCheckpoint, on_delete=models.PROTECT, related_name="heads")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    seq = models.PositiveIntegerField()
    head = models.CharField(max_length=64)

    class Meta(AppendOnlyModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "checkpoint"], name="checkpoint_head_per_chain"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} #{self.seq} at checkpoint {self.checkpoint_id}"
