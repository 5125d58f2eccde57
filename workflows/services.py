"""THE way any workflow state changes: transitions and handoff changes.

Every function here runs in one database transaction that locks the instance row, so
a change, its handoffs, its audit entry and its outbox events commit together or not at
all. Views, API, tasks, commands and the admin call these functions; none of them set
`state`, a handoff or the audit trail themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed as FSMTransitionNotAllowed
from django_fsm import can_proceed, has_transition_perm

from workflows import errors
from workflows.audit import audit_entry_build, json_normalise
from workflows.models import (
    AuditEntry,
    Handoff,
    HandoffSpec,
    IdempotencyKey,
    OutboxEvent,
    Recipient,
    TransitionStep,
    WorkflowModel,
)
from workflows.outbox import channel_event, outbox_write, task_event
from workflows.permissions import (
    holds_handoff,
    may_act_on_behalf,
    may_claim,
    may_reassign,
    open_handoffs_known,
)
from workflows.tracing import trace_id_current

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


# --- helpers -----------------------------------------------------------------------------


def _lock(model: type[W], instance_id: Any) -> W:
    """SELECT ... FOR UPDATE the instance (its row only), with the related rows its
    workflow reads on every transition. A malformed key is simply not found."""
    query = model._default_manager.all()
    if model.workflow_lock_related:
        query = query.select_related(*model.workflow_lock_related).select_for_update(of=("self",))
    else:
        query = query.select_for_update()
    try:
        return query.get(pk=instance_id)
    except (model.DoesNotExist, ValueError, TypeError, ValidationError):
        raise errors.NotFound(f"{model._meta.verbose_name} {instance_id} does not exist.") from None


def _person(actor: User | SystemActor) -> User | None:
    return None if isinstance(actor, SystemActor) else actor


def _fingerprint(**parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _snapshot(instance: models.Model) -> dict[str, Any]:
    """The instance's own field values, to record what a transition changed."""
    skip = {"state", "version", "audit_seq", "audit_head", "updated_at", "created_at"}
    return {
        f.attname: f.value_from_object(instance)
        for f in instance._meta.concrete_fields
        if f.attname not in skip and not f.primary_key
    }


def _field_values(instance: models.Model) -> dict[str, Any]:
    return {
        f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields if not f.primary_key
    }


def _fields_to_save(instance: models.Model, loaded: dict[str, Any]) -> list[str]:
    """The columns a full save would change: fields whose value differs from `loaded`,
    those holding a dict or list (it may have been changed in place), and auto_now ones.

    Writing only these keeps the row's UPDATE small; the row is locked, so nobody else
    changed the rest.
    """
    by_attname = {f.attname: f for f in instance._meta.concrete_fields}
    return [
        name
        for name, value in _field_values(instance).items()
        if value != loaded[name]
        or isinstance(value, dict | list)
        or getattr(by_attname[name], "auto_now", False)
    ]


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [before[k], after[k]] for k in before if before[k] != after[k]}


def _recipients_of(handoff: Handoff) -> list[Recipient]:
    found = []
    if handoff.assignee_id is not None:
        found.append(Recipient(user_id=handoff.assignee_id))
    if handoff.candidate_group_id is not None:
        found.append(Recipient(group_id=handoff.candidate_group_id))
    return found


def _handoff_summary(handoff: Handoff) -> dict[str, Any]:
    return {
        "id": handoff.pk,
        "stage": handoff.stage,
        "slot": handoff.slot,
        "user": handoff.assignee_id,
        "group": handoff.candidate_group_id,
        "due_at": handoff.due_at,
    }


def instance_channel_group(instance: WorkflowModel) -> str:
    """The Channels group of everyone watching one instance's page."""
    return f"instance.{instance._meta.app_label}.{instance._meta.model_name}.{instance.pk}"


def _events_for_change(
    *,
    instance: WorkflowModel,
    recipients: list[Recipient],
    topic: str,
    detail: dict[str, Any],
) -> list[OutboxEvent]:
    """One live event per person or group concerned, plus one for the instance's watchers."""
    payload = {
        "ref": instance.workflow_ref(),
        "state": instance.state,
        "version": instance.version,
        "audit_seq": instance.audit_seq,
        **json_normalise(detail),
    }
    unique = list(dict.fromkeys(recipients))
    events = [channel_event(group=r.channel_group, topic=topic, payload=payload) for r in unique]
    events.append(channel_event(group=instance_channel_group(instance), topic=topic, payload=payload))
    return events


def _open_handoffs(
    *, instance: WorkflowModel, specs: list[HandoffSpec], opened_by: User | None, now: datetime
) -> list[Handoff]:
    if not specs:
        return []
    content_type = ContentType.objects.get_for_model(instance)
    rows = [
        Handoff(
            content_type=content_type,
            object_id=str(instance.pk),
            stage=spec.stage,
            slot=spec.slot,
            assignee=spec.user,
            candidate_group=spec.group,
            due_at=spec.due_at,
            opened_at=now,
            opened_by=opened_by,
            claimed_at=now if spec.user is not None and spec.group is not None else None,
        )
        for spec in specs
    ]
    return Handoff.objects.bulk_create(rows)


def _close_handoffs(
    *, handoffs: list[Handoff], closed_by: User | None, principal: User | None, now: datetime
) -> None:
    """Close handoffs: 'done' for the one the principal held, 'superseded' for the rest."""
    done: list[int] = []
    superseded: list[int] = []
    for handoff in handoffs:
        held = principal is not None and holds_handoff(user=principal, handoff=handoff)
        handoff.close_reason = Handoff.CloseReason.DONE if held else Handoff.CloseReason.SUPERSEDED
        handoff.closed_at, handoff.closed_by = now, closed_by
        (done if held else superseded).append(handoff.pk)
    for ids, reason in ((done, Handoff.CloseReason.DONE), (superseded, Handoff.CloseReason.SUPERSEDED)):
        if ids:
            Handoff.objects.filter(pk__in=ids, closed_at__isnull=True).update(
                closed_at=now, closed_by=closed_by, close_reason=reason
            )


# --- creating an instance ----------------------------------------------------------------


def instance_create(
    *,
    instance: W,
    actor: User | SystemActor,
    comment: str = "",
    data: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> W:
    """Save a new workflow instance and open its audit chain with a 'created' entry.

    Side effects: one audit entry; live events for the instance's audience after commit.
    """
    if not instance._state.adding:
        raise errors.InvalidInput("instance_create takes a new, unsaved instance.")
    person = _person(actor)
    with transaction.atomic():
        instance.save()
        entry = audit_entry_build(
            instance=instance,
            kind=AuditEntry.Kind.CREATED,
            action="create",
            target=instance.state,
            actor=person,
            comment=comment,
            data={"fields": _snapshot(instance), **(data or {})},
            trace_id=trace_id or trace_id_current(),
        )
        entry.save()
        instance.save(update_fields=["audit_seq", "audit_head"])
        outbox_write(
            _events_for_change(
                instance=instance,
                recipients=instance.workflow_audience(),
                topic="instance.created",
                detail={"action": "create"},
            )
        )
    return instance


# --- transitions -------------------------------------------------------------------------


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
    """Take transition `name` on one instance: the only way a workflow's state changes.

    In one transaction: lock the row (SELECT ... FOR UPDATE), compare `expected_version`,
    check the transition is possible from this state (else TransitionNotAllowed), check
    the principal may take it (else Forbidden; the principal is `on_behalf_of` when an
    active delegation allows it), validate the input (InvalidInput), run the django-fsm
    method, close and open handoffs, append the audit entry and write outbox events.
    Raises before anything is written, or rolls everything back.

    With `idempotency_key`, a repeated call by the same actor returns the first call's
    result (`replayed=True`) instead of acting twice; the same key for a different
    action raises DuplicateKey.
    Side effects after commit: the outbox events are pushed (channel groups, tasks).
    """
    person = _person(actor)
    payload = data or {}
    with transaction.atomic():
        if idempotency_key:
            replay = _idempotency_claim(
                model=model,
                actor=person,
                key=idempotency_key,
                fingerprint=_fingerprint(
                    model=model._meta.label_lower,
                    instance=str(instance_id),
                    name=name,
                    comment=comment,
                    on_behalf_of=on_behalf_of.pk if on_behalf_of else None,
                    data=payload,
                ),
            )
            if replay is not None:
                return replay

        instance = _lock(model, instance_id)
        loaded = _field_values(instance)
        if expected_version is not None and instance.version != expected_version:
            raise errors.StaleVersion(
                f"{instance.workflow_ref()} is at version {instance.version}, "
                f"not {expected_version}: it changed since you loaded it."
            )
        method = getattr(instance, name, None)
        if name.startswith("_") or method is None or not hasattr(method, "_django_fsm"):
            raise errors.InvalidInput(
                f"'{name}' is not an action of {instance._meta.verbose_name}.",
                field_errors={"action": [f"Unknown action '{name}'."]},
            )
        if not can_proceed(method):
            raise errors.TransitionNotAllowed(
                f"Cannot {name.replace('_', ' ')} {instance.workflow_ref()} while it is {instance.state}."
            )

        principal = person
        if on_behalf_of is not None and person is not None and on_behalf_of.pk != person.pk:
            if not may_act_on_behalf(actor=person, principal=on_behalf_of):
                raise errors.Forbidden(f"{on_behalf_of} has not delegated their work to you.")
            principal = on_behalf_of
        # Loaded once under the row lock: the permission check reads them too (who holds it).
        open_handoffs = list(Handoff.objects.for_instance(instance).open().order_by("id"))
        if person is not None:
            assert principal is not None
            with open_handoffs_known(instance, open_handoffs):
                allowed = person.is_active and has_transition_perm(method, principal)
            if not allowed:
                raise errors.Forbidden(instance.workflow_forbidden_reason(name=name, principal=principal))

        source = instance.state
        prepared = instance.workflow_prepare(
            name=name,
            actor=person,
            principal=principal,
            comment=comment,
            data=payload,
            open_handoffs=open_handoffs,
        )
        before = _snapshot(instance)
        try:
            method(**prepared)
        except FSMTransitionNotAllowed as exc:
            raise errors.TransitionNotAllowed(str(exc)) from None
        target = instance.state
        instance.version += 1
        changes = _changes(before, _snapshot(instance))

        step = TransitionStep(
            name=name,
            source=source,
            target=target,
            actor=person,
            principal=principal,
            comment=comment,
            data=payload,
            prepared=prepared,
            open_handoffs=open_handoffs,
        )
        effects = instance.workflow_effects(step=step)
        now = timezone.now()
        _close_handoffs(handoffs=effects.close, closed_by=person, principal=principal, now=now)
        opened = _open_handoffs(instance=instance, specs=effects.open, opened_by=person, now=now)

        audit_data: dict[str, Any] = {**effects.audit_data}
        if changes:
            audit_data["changes"] = changes
        if effects.close or opened:
            audit_data["handoffs"] = {
                "closed": [
                    {
                        "id": h.pk,
                        "reason": h.close_reason,
                        "user": h.assignee_id,
                        "group": h.candidate_group_id,
                    }
                    for h in effects.close
                ],
                "opened": [_handoff_summary(h) for h in opened],
            }
        if person is None:
            audit_data["system"] = True
        entry = audit_entry_build(
            instance=instance,
            kind=AuditEntry.Kind.TRANSITION,
            action=name,
            source=source,
            target=target,
            actor=person,
            on_behalf_of=principal if principal is not None and principal != person else None,
            comment=comment,
            data=audit_data,
            trace_id=trace_id or trace_id_current(),
            created_at=now,
        )
        entry.save()
        if type(instance).save is models.Model.save:
            instance.save(update_fields=_fields_to_save(instance, loaded))
        else:  # a save() of the model's own may set more fields than we can see changed
            instance.save()

        recipients = [r for h in [*effects.close, *opened] for r in _recipients_of(h)]
        recipients += instance.workflow_audience() + effects.notify
        events = _events_for_change(
            instance=instance,
            recipients=recipients,
            topic="instance.transitioned",
            detail={"action": name, "source": source, "target": target},
        )
        # Tasks learn which audit entry caused them, so they describe exactly that change.
        events += [
            task_event(task=t.name, kwargs={**t.kwargs, "audit_seq": entry.seq}) for t in effects.tasks
        ]
        outbox_write(events)

        if idempotency_key and person is not None:
            IdempotencyKey.objects.filter(actor=person, key=idempotency_key).update(audit_entry=entry)
        return TransitionResult(instance=instance, entry=entry, source=source, target=target)


def _idempotency_claim(
    *, model: type[W], actor: User | None, key: str, fingerprint: str
) -> TransitionResult[W] | None:
    """Record `key` for `actor`, or return the result it already stands for.

    A concurrent call with the same key waits on the unique index until the first one
    commits, then replays its result (or proceeds, if the first rolled back).
    """
    if actor is None:
        raise errors.InvalidInput(
            "Idempotency keys belong to a person.", field_errors={"idempotency_key": ["Not allowed here."]}
        )
    if len(key) > 200:
        raise errors.InvalidInput(
            "Idempotency key too long.", field_errors={"idempotency_key": ["At most 200 characters."]}
        )
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(actor=actor, key=key, fingerprint=fingerprint)
        return None
    except IntegrityError:
        existing = IdempotencyKey.objects.select_related("audit_entry").get(actor=actor, key=key)
    if existing.fingerprint != fingerprint or existing.audit_entry is None:
        raise errors.DuplicateKey(f"The idempotency key '{key}' was already used for a different action.")
    entry = existing.audit_entry
    instance = model._default_manager.get(pk=entry.object_id)
    return TransitionResult(
        instance=instance, entry=entry, source=entry.source, target=entry.target, replayed=True
    )


# --- handoffs ----------------------------------------------------------------------------


def _lock_handoff(handoff_id: int) -> tuple[WorkflowModel, Handoff]:
    """Lock the handoff's instance row first (the chain's head lives there), then the handoff."""
    try:
        handoff = Handoff.objects.select_related("content_type").get(pk=handoff_id)
    except (Handoff.DoesNotExist, ValueError, TypeError):
        raise errors.NotFound(f"Handoff {handoff_id} does not exist.") from None
    model = handoff.content_type.model_class()
    if model is None or not issubclass(model, WorkflowModel):
        raise errors.NotFound(f"Handoff {handoff_id} belongs to no workflow.")
    instance = _lock(model, handoff.object_id)
    handoff = Handoff.objects.select_for_update().get(pk=handoff_id)
    return instance, handoff


def _record_handoff_change(
    *,
    instance: WorkflowModel,
    action: str,
    actor: User | None,
    on_behalf_of: User | None,
    comment: str,
    data: dict[str, Any],
    recipients: list[Recipient],
    trace_id: str | None,
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
    outbox_write(
        _events_for_change(
            instance=instance,
            recipients=recipients + instance.workflow_audience(),
            topic="handoff.changed",
            detail={"action": action, **data},
        )
    )
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
        instance, handoff = _lock_handoff(handoff_id)
        # The handoff's state answers before who may claim it (a conflict, not a 403).
        if not handoff.is_open:
            raise errors.TransitionNotAllowed("This handoff is already closed.")
        if handoff.assignee_id is not None:
            claimant = on_behalf_of or actor
            holder = "you" if handoff.assignee_id == claimant.pk else str(handoff.assignee)
            raise errors.TransitionNotAllowed(f"This item is already claimed by {holder}.")
        principal = _principal(actor=actor, on_behalf_of=on_behalf_of)
        if not may_claim(user=principal, handoff=handoff):
            raise errors.Forbidden(f"Only members of {handoff.candidate_group} can claim this item.")
        problem = instance.workflow_holder_problem(user=principal)
        if problem:
            raise errors.Forbidden(problem)
        handoff.assignee, handoff.claimed_at = principal, timezone.now()
        handoff.save(update_fields=["assignee", "claimed_at"])
        _record_handoff_change(
            instance=instance,
            action="claim",
            actor=actor,
            on_behalf_of=principal if principal != actor else None,
            comment="",
            data={"handoff": handoff.pk, "user": principal.pk, "group": handoff.candidate_group_id},
            recipients=_recipients_of(handoff),
            trace_id=trace_id,
        )
        return handoff


def handoff_unclaim(*, handoff_id: int, actor: User, trace_id: str | None = None) -> Handoff:
    """Give a claimed handoff back to its group. Only its holder or a manager may."""
    with transaction.atomic():
        instance, handoff = _lock_handoff(handoff_id)
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
        _record_handoff_change(
            instance=instance,
            action="unclaim",
            actor=actor,
            on_behalf_of=None,
            comment="",
            data={"handoff": handoff.pk, "user": previous, "group": handoff.candidate_group_id},
            recipients=[Recipient(user_id=previous), *_recipients_of(handoff)],
            trace_id=trace_id,
        )
        return handoff


def handoff_reassign(
    *,
    handoff_id: int,
    actor: User,
    to_user: User | None = None,
    to_group: Group | None = None,
    reason: str,
    trace_id: str | None = None,
) -> Handoff:
    """Hand an open handoff to someone else: close it ('reassigned') and open its successor.

    Never overwrites the holder, so who held the item when stays on record. Managers may
    reassign any handoff; a holder may pass on their own. A reason is required.
    Returns the new handoff. Side effects: a 'reassign' audit entry; live events to the
    old and new holders.
    """
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
    with transaction.atomic():
        instance, handoff = _lock_handoff(handoff_id)
        if not handoff.is_open:
            raise errors.TransitionNotAllowed("This handoff is already closed.")
        if not may_reassign(user=actor, handoff=handoff):
            raise errors.Forbidden("Only a manager or the item's holder can reassign it.")
        if to_user is not None:
            problem = instance.workflow_holder_problem(user=to_user)
            if problem:
                raise errors.InvalidInput(problem, field_errors={"to_user": [problem]})
        now = timezone.now()
        (successor,) = _open_handoffs(
            instance=instance,
            specs=[
                HandoffSpec(
                    user=to_user,
                    group=to_group,
                    stage=handoff.stage,
                    slot=handoff.slot,
                    due_at=handoff.due_at,
                )
            ],
            opened_by=actor,
            now=now,
        )
        before = _handoff_summary(handoff)
        handoff.closed_at, handoff.closed_by = now, actor
        handoff.close_reason, handoff.replaced_by = Handoff.CloseReason.REASSIGNED, successor
        handoff.save(update_fields=["closed_at", "closed_by", "close_reason", "replaced_by"])
        _record_handoff_change(
            instance=instance,
            action="reassign",
            actor=actor,
            on_behalf_of=None,
            comment=reason,
            data={"from": before, "to": _handoff_summary(successor)},
            recipients=_recipients_of(handoff) + _recipients_of(successor),
            trace_id=trace_id,
        )
        return successor


def _principal(*, actor: User, on_behalf_of: User | None) -> User:
    if on_behalf_of is None or on_behalf_of.pk == actor.pk:
        return actor
    if not may_act_on_behalf(actor=actor, principal=on_behalf_of):
        raise errors.Forbidden(f"{on_behalf_of} has not delegated their work to you.")
    return on_behalf_of
