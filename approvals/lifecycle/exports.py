"""What completing an audit export means: only the person who started it completes it,
with its completeness record (approvals.audit.export)."""

from __future__ import annotations

from typing import Any

from approvals.models import AuditExport
from workflows.definition import Action, Facts, Step, Workflow
from workflows.models import WorkflowEffects

ExportStep = Step[AuditExport, Facts]


class Complete(Action[AuditExport, Facts]):
    name = "complete"

    def allowed(self, step: ExportStep) -> bool:
        return step.principal is not None and step.principal.pk == step.instance.exported_by_id

    def refusal(self, step: ExportStep) -> str:
        return "Only the person who started an export completes it."

    def prepare(self, step: ExportStep) -> dict[str, Any]:
        data = step.data
        return {
            "rows": int(data["rows"]),
            "first_entry": data.get("first_entry"),
            "last_entry": data.get("last_entry"),
            "digest": str(data["digest"]),
        }

    def effects(self, step: ExportStep) -> WorkflowEffects:
        return WorkflowEffects(audit_data={"completeness": dict(step.data)})


class ExportWorkflow(Workflow[AuditExport, Facts]):
    model = AuditExport
    actions = {"complete": Complete()}
    lock_related = ("exported_by",)


EXPORTS = ExportWorkflow()
