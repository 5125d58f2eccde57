"""Recording what is said or added about an instance without changing its state: a
comment, an attachment. A 'note' entry in its audit chain, and live events to the people
who follow it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models, transaction

from workflows import sql
from workflows.audit import audit_entry_build
from workflows.definition import workflow_of
from workflows.models import AuditEntry, Handoff, TaskSpec, WorkflowModel
from workflows.outbox import outbox_write, task_event
from workflows.services.common import events_for_change, instance_lock, open_handoffs_of, recipients_of
from workflows.tracing import trace_id_current

if TYPE_CHECKING:
    from collections.abc import Callable

    from accounts.models import User

W = TypeVar("W", bound=WorkflowModel)


def instance_note(
    *,
    model: type[W],
    instance_id: Any,
    actor: User,
    action: str,
    comment: str = "",
    data: dict[str, Any] | None = None,
    rows: Callable[[W], list[models.Model]] | None = None,
    task: TaskSpec | None = None,
    trace_id: str | None = None,
) -> tuple[W, AuditEntry]:
    """Append a 'note' entry (`action`, e.g. 'comment') to the instance's chain, with the
    rows `rows(instance)` gives (the comment, the attachment), in one transaction with the
    row locked; its state and version stay as they are.

    Precondition: the caller checked that `actor` may say this (approvals.services).
    Side effects: live events to the current holders and the instance's audience after
    commit, and the Celery task `task` (if given), told the entry's sequence number.
    """
    workflow = workflow_of(model)
    with transaction.atomic():
        instance = instance_lock(workflow, instance_id)
        added = rows(instance) if rows is not None else []
        sql.rows_insert_grouped(added)
        entry = audit_entry_build(
            instance=instance,
            kind=AuditEntry.Kind.NOTE,
            action=action,
            source=instance.state,
            target=instance.state,
            actor=actor,
            comment=comment,
            data=data or {},
            trace_id=trace_id or trace_id_current(),
        )
        sql.rows_insert([entry])
        sql.row_update(instance, ["audit_seq", "audit_head", "updated_at"])
        holders: list[Handoff] = open_handoffs_of(instance)
        events = events_for_change(
            workflow=workflow,
            instance=instance,
            recipients=[r for h in holders for r in recipients_of(h)] + workflow.audience(instance),
            topic="instance.noted",
            detail={"action": action},
            actor=actor,
        )
        if task is not None:
            events.append(task_event(task=task.name, kwargs={**task.kwargs, "audit_seq": entry.seq}))
        outbox_write(events)
    return instance, entry
