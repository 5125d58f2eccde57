"""Changing who holds an item without changing its state: claim, release, reassign.

Each locks the instance row first (its audit chain's head lives there), then the
handoff, and records an audited 'handoff' entry with live events to everyone concerned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from workflows import errors, records
from workflows.audit import audit_entry_build
from workflows.definition import Workflow, workflow_of
from workflows.models import AuditEntry, Handoff, HandoffSpec, Recipient, TimerState, WorkflowModel
from workflows.outbox import outbox_write, task_event
from workflows.permissions import may_claim, may_reassign
from workflows.services.common import (
    SystemActor,
    events_for_change,
    handoffs_open,
    instance_lock,
    person_of,
    principal_of,
    recipients_of,
)
from workflows.tracing import trace_id_current
from workflows.webhooks.events import webhook_fanout_event
from workflows.webhooks.registry import StepFacts

if TYPE_CHECKING:
    from accounts.models import User


def _lock_handoff(handoff_id: int) -> tuple[Workflow[Any, Any], WorkflowModel, Handoff]:
    """Lock the handoff's instance row first (the chain's head lives there), then the handoff."""
    try:
        handoff = Handoff.objects.select_related("content_type").get(pk=handoff_id)
    except (Handoff.DoesNotExist, ValueError, TypeError):
        raise errors.NotFound(f"Handoff {handoff_id} does not exist.") from None
    model = handoff.content_type.model_class()
    if model is None or not issubclass(model, WorkflowModel):
        raise errors.NotFound(f"Handoff {handoff_id} belongs to no workflow.")
    workflow = workflow_of(model)
    instance = instance_lock(workflow, handoff.object_id)
    handoff = Handoff.objects.select_for_update().get(pk=handoff_id)
    return workflow, instance, handoff


def _record(
    *,
    workflow: Workflow[Any, Any],
    instance: WorkflowModel,
    action: str,
    actor: User | None,
    on_behalf_of: User | None,
    comment: str,
    data: dict[str, Any],
    recipients: list[Recipient],
    trace_id: str | None,
    opened: list[Handoff] | None = None,
) -> AuditEntry:
    entry = audit_entry_build(
        instance=instance,
        kind=AuditEntry.Kind.HANDOFF,
        action=action,
        source=instance.state,
        target=instance.state,
        actor=actor,
        on_behalf_of=on_behalf_of,
        comment=comment,
        data=data,
        trace_id=trace_id or trace_id_current(),
    )
    entry.save()
    instance.save(update_fields=["audit_seq", "audit_head", "updated_at"])
    events = events_for_change(
        workflow=workflow,
        instance=instance,
        recipients=recipients + workflow.audience(instance),
        topic="handoff.changed",
        detail={"action": action, **data},
        actor=actor,
    )
    events += [
        task_event(task=t.name, kwargs={**t.kwargs, "audit_seq": entry.seq})
        for t in workflow.handoff_tasks(instance, action=action)
    ]
    # Webhooks: one task event among the step's others (no query here); its task writes
    # the deliveries after commit. Committed with the step, so never lost.
    events += webhook_fanout_event(
        StepFacts(
            instance=instance,
            action=action,
            source=instance.state,
            target=instance.state,
            actor=actor,
            audit_seq=entry.seq,
            opened=opened or [],
            occurred_at=entry.created_at,
        )
    )
    outbox_write(events)
    return entry


def handoff_claim(
    *, handoff_id: int, actor: User, on_behalf_of: User | None = None, trace_id: str | None = None
) -> Handoff:
    """Take a handoff offered to one of your groups, so the others see it is being handled.

    Locks the instance and the handoff. Raises TransitionNotAllowed when it is closed or
    already claimed, Forbidden when the principal is not in its group.
    Side effects: a 'claim' audit entry; live events to the group and the claimer.
    """
    with transaction.atomic():
        workflow, instance, handoff = _lock_handoff(handoff_id)
        # The handoff's state answers before who may claim it (a conflict, not a 403).
        if not handoff.is_open:
            raise errors.TransitionNotAllowed("This handoff is already closed.")
        if handoff.assignee_id is not None:
            claimant = on_behalf_of or actor
            holder = "you" if handoff.assignee_id == claimant.pk else str(handoff.assignee)
            raise errors.TransitionNotAllowed(f"This item is already claimed by {holder}.")
        principal = principal_of(actor=actor, on_behalf_of=on_behalf_of, workflow=workflow, instance=instance)
        assert principal is not None
        if not may_claim(user=principal, handoff=handoff):
            raise errors.Forbidden(f"Only members of {handoff.candidate_group} can claim this item.")
        problem = workflow.holder_problem(instance, user=principal)
        if problem:
            raise errors.Forbidden(problem)
        handoff.assignee, handoff.claimed_at = principal, timezone.now()
        handoff.save(update_fields=["assignee", "claimed_at"])
        _record(
            workflow=workflow,
            instance=instance,
            action="claim",
            actor=actor,
            on_behalf_of=principal if principal != actor else None,
            comment="",
            data=records.claim_data(handoff=handoff, user_id=principal.pk),
            recipients=recipients_of(handoff),
            trace_id=trace_id,
        )
        return handoff


def handoff_unclaim(*, handoff_id: int, actor: User, trace_id: str | None = None) -> Handoff:
    """Give a claimed handoff back to its group. Only its holder or a manager may."""
    with transaction.atomic():
        workflow, instance, handoff = _lock_handoff(handoff_id)
        if not handoff.is_open:
            raise errors.TransitionNotAllowed("This handoff is already closed.")
        if handoff.candidate_group_id is None or handoff.assignee_id is None:
            raise errors.TransitionNotAllowed("This item is not claimed from a group.")
        if not actor.is_active or (
            handoff.assignee_id != actor.pk and not may_reassign(user=actor, handoff=handoff)
        ):
            raise errors.Forbidden("Only the person who claimed this item or a manager can release it.")
        previous = handoff.assignee_id
        handoff.assignee, handoff.claimed_at = None, None
        handoff.save(update_fields=["assignee", "claimed_at"])
        _record(
            workflow=workflow,
            instance=instance,
            action="unclaim",
            actor=actor,
            on_behalf_of=None,
            comment="",
            data=records.claim_data(handoff=handoff, user_id=previous),
            recipients=[Recipient(user_id=previous), *recipients_of(handoff)],
            trace_id=trace_id,
        )
        return handoff


def reassign_input_check(*, to_user: User | None, to_group: Group | None, reason: str) -> None:
    """Raise InvalidInput naming each field when a reassignment's input is incomplete: a
    reason, and an active person or a group (the person a member of the group, if both).
    The first check of `handoff_reassign`, public so a batch checks it once, up front."""
    field_errors: dict[str, list[str]] = {}
    if not reason.strip():
        field_errors["reason"] = ["Say why the item is being reassigned."]
    if to_user is None and to_group is None:
        field_errors["to_user"] = ["Choose a person or a group to hand the item to."]
    if to_user is not None and not to_user.is_active:
        field_errors["to_user"] = [f"{to_user} is not an active user."]
    if to_user is not None and to_group is not None and not to_user.groups.filter(pk=to_group.pk).exists():
        field_errors["to_user"] = [f"{to_user} is not a member of {to_group}."]
    if field_errors:
        raise errors.InvalidInput("The reassignment is incomplete.", field_errors=field_errors)


def handoff_reassign(
    *,
    handoff_id: int,
    actor: User | SystemActor,
    to_user: User | None = None,
    to_group: Group | None = None,
    reason: str,
    trace_id: str | None = None,
) -> Handoff:
    """Hand an open handoff to someone else: close it ('reassigned') and open its successor.

    Never overwrites the holder, so who held the item when stays on record. Managers may
    reassign any handoff; a holder may pass on their own; the system (an SLA escalation)
    may reassign any. A reason is required. The successor keeps the due time and the
    timers' progress (reminders sent, escalated), so handing work on never restarts them.
    Returns the new handoff. Side effects: a 'reassign' audit entry; live events to the
    old and new holders. The system actor (an expiry's escalation) skips the role check.
    """
    reassign_input_check(to_user=to_user, to_group=to_group, reason=reason)
    person = person_of(actor)
    with transaction.atomic():
        workflow, instance, handoff = _lock_handoff(handoff_id)
        if not handoff.is_open:
            raise errors.TransitionNotAllowed("This handoff is already closed.")
        if person is not None and not may_reassign(user=person, handoff=handoff):
            raise errors.Forbidden("Only a manager or the item's holder can reassign it.")
        if to_user is not None:
            problem = workflow.holder_problem(instance, user=to_user)
            if problem:
                raise errors.InvalidInput(problem, field_errors={"to_user": [problem]})
        now = timezone.now()
        (successor,) = handoffs_open(
            instance=instance,
            specs=[
                HandoffSpec(
                    user=to_user,
                    group=to_group,
                    stage=handoff.stage,
                    slot=handoff.slot,
                    due_at=handoff.due_at,
                    timers=TimerState(
                        next_timer_at=handoff.next_timer_at,
                        reminders_sent=handoff.reminders_sent,
                        escalated_at=handoff.escalated_at,
                        reminders_at=tuple(handoff.reminders_at),
                    ),
                )
            ],
            opened_by=person,
            now=now,
        )
        data = records.reassign_data(before=handoff, after=successor)
        handoff.closed_at, handoff.closed_by = now, person
        handoff.close_reason, handoff.replaced_by = Handoff.CloseReason.REASSIGNED, successor
        handoff.save(update_fields=["closed_at", "closed_by", "close_reason", "replaced_by"])
        _record(
            workflow=workflow,
            instance=instance,
            action="reassign",
            actor=person,
            on_behalf_of=None,
            comment=reason,
            data=data,
            recipients=recipients_of(handoff) + recipients_of(successor),
            trace_id=trace_id,
            opened=[successor],
        )
        return successor
