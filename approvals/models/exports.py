"""Exports of the audit trail, themselves audited (approvals.audit)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition

from workflows.definition import fsm_permission
from workflows.models import WorkflowModel


class ExportState(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"


class AuditExport(WorkflowModel):
    """One export of the audit trail (CSV, JSON Lines, or an evidence bundle) by one person.

    A workflow instance of its own, so that the export is an audited action like any other:
    its 'create' entry records who asked for what (the filter, the format), and its
    'complete' transition records the completeness record (rows, first and last entry,
    digest) in the same hash chain, covered by the same checkpoints. An export that never
    completes (the download was cut) stays 'running'.
    """

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        BUNDLE = "bundle", "Evidence bundle"

    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    format = models.CharField(max_length=10, choices=Format.choices)
    filter = models.JSONField(default=dict, blank=True)
    rows = models.PositiveBigIntegerField(null=True, blank=True)
    first_entry = models.BigIntegerField(null=True, blank=True)
    last_entry = models.BigIntegerField(null=True, blank=True)
    digest = models.CharField(max_length=64, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    state = FSMField(default=ExportState.RUNNING, choices=ExportState.choices, protected=True)

    class Meta:
        indexes = [models.Index(fields=["-id"], name="export_newest_first")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.get_format_display()} by {self.exported_by_id}"

    @property
    def reference(self) -> str:
        return f"EXP-{self.pk}"

    @transition(
        field=state,
        source=ExportState.RUNNING,
        target=ExportState.COMPLETE,
        permission=fsm_permission("complete"),
    )
    def complete(self, *, rows: int, first_entry: int | None, last_entry: int | None, digest: str) -> None:
        self.rows, self.first_entry, self.last_entry, self.digest = rows, first_entry, last_entry, digest
        self.completed_at = timezone.now()

    def summary(self) -> dict[str, Any]:
        return {"format": self.format, "filter": self.filter}
