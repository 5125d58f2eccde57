"""What every writing service shares: the system actor, the row lock, who acts for whom,
opening and closing handoffs, and the live events a change sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models

from workflows import errors, sql
from workflows.audit import json_normalise
from workflows.definition import Workflow
from workflows.models import AuditEntry, Handoff, HandoffSpec, OutboxEvent, Recipient, WorkflowModel
from workflows.outbox import channel_event
from workflows.permissions import holds_handoff, may_act_on_behalf

if TYPE_CHECKING:
    from accounts.models import User

W = TypeVar("W", bound=WorkflowModel)


class SystemActor:
    """The system itself (timers, migrations of policy versions): no person acted.

    Passed explicitly by trusted callers (Celery tasks, management commands); never
    derived from a request. Skips role checks, never the state checks.
    """

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemActor()


@dataclass(frozen=True)
class TransitionResult(Generic[W]):
    instance: W
    entry: AuditEntry
    source: str
    target: str
    replayed: bool = False


def person_of(actor: User | SystemActor) -> User | None:
    return None if isinstance(actor, SystemActor) else actor


def principal_of(
    *,
    actor: User | None,
    on_behalf_of: User | None,
    workflow: Workflow[Any, Any] | None = None,
    instance: WorkflowModel | None = None,
) -> User | None:
    """Whose decision an action on `instance` is: the actor's own, or, under an active
    delegation that reaches the item (its workflow's `delegation_scope`), the delegator's.

    Raises Forbidden when `on_behalf_of` has not delegated this work to the actor, or when
    the item is `on_behalf_of`'s own (its workflow's `owner_id`): a delegate never
    withdraws, resubmits or decides someone's own request for them.
    """
    if actor is None or on_behalf_of is None or on_behalf_of.pk == actor.pk:
        return actor
    scope = owner = None
    if workflow is not None and instance is not None:
        scope, owner = workflow.delegation_scope(instance), workflow.owner_id(instance)
    if not may_act_on_behalf(actor=actor, principal=on_behalf_of, scope=scope):
        raise errors.Forbidden(f"{on_behalf_of} has not delegated this work to you.")
    if owner is not None and owner == on_behalf_of.pk:
        raise errors.Forbidden(f"This is {on_behalf_of}'s own item: nobody acts on it for them.")
    return on_behalf_of


def instance_lock(workflow: Workflow[W, Any], instance_id: Any) -> W:
    """SELECT ... FOR UPDATE the instance (its row only), with the related rows its
    workflow reads on every transition. A malformed key is simply not found."""
    model = workflow.model
    try:
        instance = sql.row_lock(model, instance_id, related=workflow.lock_related)
    except (ValueError, TypeError, ValidationError):
        instance = None
    if instance is None:
        raise errors.NotFound(f"{model._meta.verbose_name} {instance_id} does not exist.")
    return instance


def open_handoffs_of(instance: WorkflowModel) -> list[Handoff]:
    """The instance's open handoffs in the order they were opened (one statement)."""
    content_type = ContentType.objects.get_for_model(instance)
    return sql.rows_select(
        Handoff,
        where="content_type_id = %s AND object_id = %s AND closed_at IS NULL",
        params=[content_type.pk, str(instance.pk)],
        order_by="id",
    )


def handoffs_open(
    *,
    instance: WorkflowModel,
    specs: list[HandoffSpec],
    opened_by: User | None,
    now: datetime,
    writes: sql.Writes | None = None,
) -> list[Handoff]:
    """Insert a handoff per spec, opened at `now`, due when its spec says counted from
    that same `now`, its first timer set (workflows.models.Handoff.next_timer).
    With `writes`, the INSERT is added to them: the rows have their keys once they ran."""
    if not specs:
        return []
    content_type = ContentType.objects.get_for_model(instance)
    rows = []
    for spec in specs:
        handoff = Handoff(
            content_type=content_type,
            object_id=str(instance.pk),
            stage=spec.stage,
            slot=spec.slot,
            assignee=spec.user,
            candidate_group=spec.group,
            due_at=spec.due_from(now),
            opened_at=now,
            opened_by=opened_by,
            claimed_at=now if spec.user is not None and spec.group is not None else None,
        )
        if spec.timers is not None:
            handoff.next_timer_at = spec.timers.next_timer_at
            handoff.reminders_sent = spec.timers.reminders_sent
            handoff.escalated_at = spec.timers.escalated_at
            handoff.reminders_at = list(spec.timers.reminders_at)
        else:
            handoff.reminders_at = [m.isoformat() for m in spec.reminders_from(now, handoff.due_at)]
            handoff.next_timer_at = handoff.next_timer(spec.remind_at)
        rows.append(handoff)
    if writes is None:
        sql.rows_insert(rows)
    else:
        writes.insert(rows)
    return rows


def handoffs_close(
    *,
    handoffs: list[Handoff],
    closed_by: User | None,
    principal: User | None,
    now: datetime,
    writes: sql.Writes | None = None,
) -> None:
    """Close handoffs: 'done' for those the principal held, 'superseded' for the rest.
    With `writes`, the UPDATEs are added to them instead of sent."""
    sending = sql.Writes() if writes is None else writes
    by_reason: dict[str, list[int]] = {}
    for handoff in handoffs:
        held = principal is not None and holds_handoff(user=principal, handoff=handoff)
        reason: str = Handoff.CloseReason.DONE if held else Handoff.CloseReason.SUPERSEDED
        handoff.close_reason, handoff.closed_at, handoff.closed_by = reason, now, closed_by
        by_reason.setdefault(reason, []).append(handoff.pk)
    for reason, ids in by_reason.items():
        where, params = sql.in_list(Handoff, "id", ids)
        sending.update_where(
            Handoff,
            values={
                "closed_at": now,
                "closed_by": closed_by.pk if closed_by else None,
                "close_reason": reason,
            },
            where=f"{where} AND closed_at IS NULL",
            params=params,
        )
    if writes is None:
        sending.run()


def recipients_of(handoff: Handoff) -> list[Recipient]:
    found = []
    if handoff.assignee_id is not None:
        found.append(Recipient(user_id=handoff.assignee_id))
    if handoff.candidate_group_id is not None:
        found.append(Recipient(group_id=handoff.candidate_group_id))
    return found


def instance_channel_group(instance: WorkflowModel) -> str:
    """The Channels group of everyone watching one instance's page."""
    return f"instance.{instance._meta.app_label}.{instance._meta.model_name}.{instance.pk}"


def actor_ref(actor: User | None) -> dict[str, Any] | None:
    """Who made a change, as live events name them ("Alex approved REQ-12"); None: the system."""
    if actor is None:
        return None
    return {"id": actor.pk, "name": actor.display_name}


def events_for_change(
    *,
    workflow: Workflow[Any, Any],
    instance: WorkflowModel,
    recipients: list[Recipient],
    topic: str,
    detail: dict[str, Any],
    actor: User | None,
) -> list[OutboxEvent]:
    """One live event per person or group concerned, plus one for the instance's watchers.

    Each names its actor (`by`), so a page tells who did what and the actor's own page
    shows no notice for their own action. Each carries the item's delegation `scope` key
    and its `owner`, so a socket hearing a stream only through a delegation relays just
    what that delegation reaches (workflows.subscriptions.Reach)."""
    owner = workflow.owner_id(instance)
    payload = {
        "ref": instance.workflow_ref(),
        "label": instance.workflow_label(),
        "scope": workflow.delegation_scope(instance),
        "owner": None if owner is None else str(owner),
        "by": actor_ref(actor),
        "state": instance.state,
        "version": instance.version,
        "audit_seq": instance.audit_seq,
        **json_normalise(detail),
    }
    unique = list(dict.fromkeys(recipients))
    events = [channel_event(group=r.channel_group, topic=topic, payload=payload) for r in unique]
    events.append(channel_event(group=instance_channel_group(instance), topic=topic, payload=payload))
    return events


def field_values(instance: models.Model) -> dict[str, Any]:
    return {
        f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields if not f.primary_key
    }


SNAPSHOT_SKIP = frozenset({"state", "version", "audit_seq", "audit_head", "updated_at", "created_at"})


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The instance's own field values, to record what a transition changed."""
    return {
        f.attname: f.value_from_object(instance)
        for f in instance._meta.concrete_fields
        if f.attname not in SNAPSHOT_SKIP and not f.primary_key
    }


def fields_to_save(instance: models.Model, loaded: dict[str, Any]) -> list[str]:
    """The columns a full save would change: fields whose value differs from `loaded`,
    those holding a dict or list (it may have been changed in place), and auto_now ones.

    Writing only these keeps the row's UPDATE small; the row is locked, so nobody else
    changed the rest.
    """
    by_attname = {f.attname: f for f in instance._meta.concrete_fields}
    return [
        name
        for name, value in field_values(instance).items()
        if value != loaded[name]
        or isinstance(value, dict | list)
        or getattr(by_attname[name], "auto_now", False)
    ]


def instance_save(
    instance: WorkflowModel, *, loaded: dict[str, Any], writes: sql.Writes | None = None
) -> None:
    """Write what changed on a locked instance since `loaded` was taken (with `writes`:
    added to them, unless the model has a save() of its own, which runs at once)."""
    if type(instance).save is not models.Model.save:
        # a save() of the model's own may set more fields than we can see changed
        instance.save()
    elif writes is None:
        sql.row_update(instance, fields_to_save(instance, loaded))
    else:
        writes.update(instance, fields_to_save(instance, loaded))
