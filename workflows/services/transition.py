"""THE way a workflow's state changes: `transition`.

One transaction: lock the row, compare the version, check the state (django-fsm's
`can_proceed`) before the permission (the action's `allowed`, with the facts read under
the lock: a conflict is never turned into a 403), let the action validate its input and
work out its change, run the transition method, then write what the action's effects
say (handoffs, side rows), the audit entry and the outbox events. Raises before anything
is written, or rolls everything back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed as FSMTransitionNotAllowed
from django_fsm import can_proceed

from workflows import errors, records, sql
from workflows.audit import audit_entry_build
from workflows.definition import Action, Step, Workflow, workflow_of
from workflows.models import AuditEntry, IdempotencyKey, OutboxEvent, WorkflowModel
from workflows.outbox import outbox_write, task_event
from workflows.services.common import (
    SystemActor,
    TransitionResult,
    events_for_change,
    handoffs_close,
    handoffs_open,
    instance_lock,
    instance_save,
    open_handoffs_of,
    person_of,
    principal_of,
    recipients_of,
    snapshot,
)
from workflows.services.idempotency import idempotency_claim, idempotency_fingerprint
from workflows.tracing import trace_id_current
from workflows.webhooks.events import webhook_fanout_event
from workflows.webhooks.registry import StepFacts

if TYPE_CHECKING:
    from accounts.models import User

W = TypeVar("W", bound=WorkflowModel)


def transition(
    *,
    model: type[W],
    instance_id: Any,
    name: str,
    actor: User | SystemActor,
    comment: str = "",
    on_behalf_of: User | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
    data: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> TransitionResult[W]:
    """Take action `name` on one instance: the only way a workflow's state changes.

    Raises NotFound, StaleVersion (`expected_version` differs), TransitionNotAllowed (not
    from this state), Forbidden (the principal — `on_behalf_of` under an active
    delegation, else the actor — may not; the action's `refusal` says why) or
    InvalidInput (naming each bad field), before anything is written.

    With `idempotency_key`, a repeated call by the same actor returns the first call's
    result (`replayed=True`) instead of acting twice; the same key for a different
    action raises DuplicateKey.
    Side effects after commit: the outbox events are pushed (channel groups, tasks).
    """
    workflow = workflow_of(model)
    action = workflow.action(name)
    person = person_of(actor)
    payload = data or {}
    with transaction.atomic():
        if idempotency_key:
            fingerprint = idempotency_fingerprint(
                model=model._meta.label_lower,
                instance=str(instance_id),
                name=name,
                comment=comment,
                on_behalf_of=on_behalf_of.pk if on_behalf_of else None,
                data=payload,
            )
            replay = idempotency_claim(
                model=model, actor=person, key=idempotency_key, fingerprint=fingerprint
            )
            if replay is not None:
                return replay

        instance = instance_lock(workflow, instance_id)
        if expected_version is not None and instance.version != expected_version:
            raise errors.StaleVersion(
                f"{instance.workflow_ref()} is at version {instance.version}, "
                f"not {expected_version}: it changed since you loaded it."
            )
        method = getattr(instance, name, None)
        if method is None or not hasattr(method, "_django_fsm"):
            raise errors.InvalidInput(
                f"'{name}' is not an action of {instance._meta.verbose_name}.",
                field_errors={"action": [f"Unknown action '{name}'."]},
            )
        if not can_proceed(method):
            raise errors.TransitionNotAllowed(
                f"Cannot {name.replace('_', ' ')} {instance.workflow_ref()} while it is {instance.state}."
            )
        principal = principal_of(
            actor=person, on_behalf_of=on_behalf_of, workflow=workflow, instance=instance
        )
        step: Step[W, Any] = Step(
            instance=instance,
            name=name,
            actor=person,
            principal=principal,
            facts=workflow.facts(instance, open_handoffs=open_handoffs_of(instance)),
            comment=comment,
            data=payload,
            source=instance.state,
        )
        if person is not None and not (person.is_active and action.allowed(step)):
            raise errors.Forbidden(action.refusal(step))
        step.prepared = action.prepare(step)

        loaded = {f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields}
        applied = step_apply(workflow, action, step, trace_id=trace_id)
        # The entry, the instance and the events: one statement on PostgreSQL.
        writes = sql.Writes()
        writes.insert([applied.entry])
        instance_save(instance, loaded=loaded, writes=writes)
        outbox_write(applied.events, writes=writes)
        writes.run()

        if idempotency_key and person is not None:
            IdempotencyKey.objects.filter(actor=person, key=idempotency_key).update(audit_entry=applied.entry)
        return TransitionResult(
            instance=instance, entry=applied.entry, source=step.source, target=instance.state
        )


@dataclass
class Applied:
    """A step taken in memory and in the handoff and side tables: its audit entry (not yet
    inserted, the instance's chain head already advanced) and its outbox events (not yet
    written)."""

    entry: AuditEntry
    events: list[OutboxEvent]


def step_apply(
    workflow: Workflow[W, Any],
    action: Action[W, Any],
    step: Step[W, Any],
    *,
    trace_id: str | None,
    now: datetime | None = None,
) -> Applied:
    """Run the transition method and write what the action's effects say.

    Precondition: the row is locked (or was inserted in this transaction), the state and
    permission were checked and `step.prepared` is set. The caller inserts the entry,
    saves the instance and writes the events.
    """
    instance = step.instance
    before = snapshot(instance)
    try:
        getattr(instance, step.name)(**step.prepared)
    except FSMTransitionNotAllowed as exc:
        raise errors.TransitionNotAllowed(str(exc)) from None
    instance.version += 1
    after = snapshot(instance)
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}

    effects = action.effects(step)
    moment = now or timezone.now()
    # Handoffs closed and opened, side rows: one statement on PostgreSQL, sent before the
    # entry is built (it names the opened handoffs by their keys).
    writes = sql.Writes()
    handoffs_close(
        handoffs=effects.close, closed_by=step.actor, principal=step.principal, now=moment, writes=writes
    )
    opened = handoffs_open(
        instance=instance, specs=effects.open, opened_by=step.actor, now=moment, writes=writes
    )
    writes.insert_grouped(effects.rows)
    for row, fields in effects.updated:
        writes.update(row, fields)
    writes.run()

    principal, person = step.principal, step.actor
    entry = audit_entry_build(
        instance=instance,
        kind=AuditEntry.Kind.TRANSITION,
        action=step.name,
        source=step.source,
        target=instance.state,
        actor=person,
        on_behalf_of=principal if principal is not None and principal != person else None,
        comment=step.comment,
        data=records.transition_data(
            sections=effects.audit_data,
            changes=changes,
            closed=effects.close,
            opened=opened,
            system=person is None,
        ),
        trace_id=trace_id or trace_id_current(),
        created_at=moment,
    )
    recipients = [r for h in [*effects.close, *opened] for r in recipients_of(h)]
    recipients += workflow.audience(instance) + effects.notify
    events = events_for_change(
        workflow=workflow,
        instance=instance,
        recipients=recipients,
        topic="instance.transitioned",
        detail={"action": step.name, "source": step.source, "target": instance.state},
        actor=person,
    )
    # Tasks learn which audit entry caused them, so they describe exactly that change.
    events += [task_event(task=t.name, kwargs={**t.kwargs, "audit_seq": entry.seq}) for t in effects.tasks]
    # Webhooks: one task event among the step's others (no query here); its task writes
    # the deliveries after commit. Committed with the step, so never lost.
    events += webhook_fanout_event(
        StepFacts(
            instance=instance,
            action=step.name,
            source=step.source,
            target=instance.state,
            actor=person,
            audit_seq=entry.seq,
            opened=opened,
            occurred_at=moment,
        )
    )
    return Applied(entry=entry, events=events)
