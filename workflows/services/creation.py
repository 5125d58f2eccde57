"""Creating a workflow instance: its first row, its first audit entry, and optionally its
first transition, in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models, transaction
from django.utils import timezone
from django_fsm import can_proceed

from workflows import errors, records, sql
from workflows.audit import audit_entry_build
from workflows.definition import Step, workflow_of
from workflows.models import AuditEntry, OutboxEvent, WorkflowModel
from workflows.outbox import outbox_write
from workflows.services.common import SystemActor, events_for_change, instance_save, person_of, snapshot
from workflows.services.transition import step_apply
from workflows.tracing import trace_id_current

if TYPE_CHECKING:
    from accounts.models import User

W = TypeVar("W", bound=WorkflowModel)


def instance_create(
    *,
    instance: W,
    actor: User | SystemActor,
    comment: str = "",
    data: dict[str, Any] | None = None,
    trace_id: str | None = None,
    then: str | None = None,
) -> W:
    """Save a new workflow instance and open its audit chain with a 'created' entry; with
    `then`, take that action on it at once (e.g. create and submit), in the same
    transaction, checked as `transition` checks it.

    Raises what `transition` raises for `then`; nothing is left behind then.
    Side effects: the 'created' entry (and the action's), the workflow's creation rows
    (`Workflow.created`); live events for the instance's audience after commit, one push.
    """
    if not instance._state.adding:
        raise errors.InvalidInput("instance_create takes a new, unsaved instance.")
    workflow = workflow_of(type(instance))
    action = workflow.action(then) if then else None
    person = person_of(actor)
    trace = trace_id or trace_id_current()
    with transaction.atomic():
        now = timezone.now()
        if type(instance).save is models.Model.save:
            sql.rows_insert([instance])
        else:
            instance.save()
        loaded = {f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields}
        sql.rows_insert_grouped(workflow.created(instance, actor=person))
        entries = [
            audit_entry_build(
                instance=instance,
                kind=AuditEntry.Kind.CREATED,
                action="create",
                target=instance.state,
                actor=person,
                comment=comment,
                data=records.created_data(fields=snapshot(instance), extra=data),
                trace_id=trace,
                created_at=now,
            )
        ]
        events: list[OutboxEvent]
        if action is None or then is None:
            events = events_for_change(
                workflow=workflow,
                instance=instance,
                recipients=workflow.audience(instance),
                topic="instance.created",
                detail={"action": "create"},
                actor=person,
            )
        else:
            method = getattr(instance, then, None)
            if method is None or not can_proceed(method):
                raise errors.TransitionNotAllowed(
                    f"Cannot {then.replace('_', ' ')} a new {instance._meta.verbose_name}."
                )
            step: Step[W, Any] = Step(
                instance=instance,
                name=then,
                actor=person,
                principal=person,
                facts=workflow.facts(instance, open_handoffs=[]),  # a new instance holds none
                source=instance.state,
            )
            if person is not None and not (person.is_active and action.allowed(step)):
                raise errors.Forbidden(action.refusal(step))
            step.prepared = action.prepare(step)
            # The transition's events reach the same audience: the creation needs none of its own.
            applied = step_apply(workflow, action, step, trace_id=trace)
            entries.append(applied.entry)
            events = applied.events
        writes = sql.Writes()
        writes.insert(entries)
        instance_save(instance, loaded=loaded, writes=writes)
        outbox_write(events, writes=writes)
        writes.run()
    return instance
