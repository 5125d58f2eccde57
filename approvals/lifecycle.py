"""What each lifecycle action of a request means, as the transition service runs it.

`plan_for` runs in the service's prepare step (row locked, state and permission already
checked): it validates the input, applies separation of duties and works out the route
change (approvals.stages). `effects_for` runs after the transition method: it writes the
decision or revision the plan carries and tells the service which handoffs close and
open. Both run inside the service's transaction, so a refusal leaves nothing behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from approvals.models import (
    DECISIONS,
    TITLE_MAX,
    ApprovalRequest,
    Decision,
    PolicyVersion,
    RequestRevision,
    State,
)
from approvals.models.requests import COMMENT_REQUIRED, STATES
from approvals.schemas import payload_errors
from approvals.stages import (
    RevisionSpec,
    RoutePlan,
    deciders_this_revision,
    plan_close,
    plan_decision,
    plan_move,
    plan_submit,
)
from workflows import errors
from workflows.models import Handoff, TransitionStep, WorkflowEffects

if TYPE_CHECKING:
    from accounts.models import User

RESUBMIT_FIELDS = ("title", "description", "payload")


def plan_for(
    request: ApprovalRequest,
    *,
    name: str,
    actor: User | None,
    principal: User | None,
    comment: str,
    data: dict[str, Any],
    open_handoffs: list[Handoff],
) -> RoutePlan:
    """The route change of lifecycle action `name`; raises a domain error to refuse it."""
    if name in DECISIONS:
        assert actor is not None
        assert principal is not None
        return _plan_decision(
            request, name=name, actor=actor, principal=principal, comment=comment, open_handoffs=open_handoffs
        )
    if name == "submit":
        version = _current_policy(request)
        _check_payload(request, request.payload)
        return plan_submit(
            request=request,
            policy=version.policy,
            version_id=version.pk,
            payload=request.payload,
            revision=request.revision,
            states=STATES,
            open_handoffs=open_handoffs,
        )
    if name == "resubmit":
        return _plan_resubmit(request, data=data, open_handoffs=open_handoffs)
    if name in {"withdraw", "cancel"}:
        target = State.WITHDRAWN if name == "withdraw" else State.CANCELLED
        return plan_close(request=request, target=target, open_handoffs=open_handoffs)
    if name == "move_policy":
        version = _move_target(request, data)
        return plan_move(
            request=request,
            policy=version.policy,
            version_id=version.pk,
            states=STATES,
            open_handoffs=open_handoffs,
        )
    raise errors.InvalidInput(
        f"Unknown action '{name}'.", field_errors={"action": [f"Unknown action '{name}'."]}
    )


def effects_for(request: ApprovalRequest, *, step: TransitionStep) -> WorkflowEffects:
    """Write the decision / revision of the plan; return its handoff changes and audit data."""
    plan: RoutePlan = step.prepared["plan"]
    if plan.decision is not None:
        assert step.actor is not None
        assert step.principal is not None
        Decision.objects.create(
            request=request,
            revision=request.revision,
            stage_index=plan.decision.stage_index,
            stage_name=plan.decision.stage_name,
            outcome=plan.decision.outcome,
            principal=step.principal,
            actor=step.actor,
            slot=plan.decision.slot,
            comment=step.comment,
        )
    if plan.revision is not None:
        assert step.actor is not None
        RequestRevision.objects.create(
            request=request,
            number=plan.revision.number,
            title=plan.revision.title,
            description=plan.revision.description,
            payload=plan.revision.payload,
            diff=plan.revision.diff,
            created_by=step.actor,
        )
    return WorkflowEffects(
        close=plan.close,
        open=plan.open,
        tasks=[request.notify_task(action=step.name)],
        audit_data=plan.audit,
    )


# --- decisions -----------------------------------------------------------------------------


def _plan_decision(
    request: ApprovalRequest,
    *,
    name: str,
    actor: User,
    principal: User,
    comment: str,
    open_handoffs: list[Handoff],
) -> RoutePlan:
    if actor.pk == request.requester_id:
        # The principal was checked by the permission; this closes the delegation loophole.
        raise errors.Forbidden("You cannot decide on your own request, not even on someone's behalf.")
    if name in COMMENT_REQUIRED and not comment.strip():
        raise errors.InvalidInput(COMMENT_REQUIRED[name], field_errors={"comment": [COMMENT_REQUIRED[name]]})
    policy = request.policy
    stage = request.current_stage
    if policy is None or stage is None:
        raise errors.TransitionNotAllowed(f"{request.reference} is not waiting in any stage.")
    scope = None if policy.one_decision_per_person else stage.name
    # The permission check (policies.may_decide) already refused a principal who has had
    # their say; a delegate acting for them must not have had theirs either.
    already = (
        deciders_this_revision(request, stage_name=scope) & {actor.pk, principal.pk}
        if actor.pk != principal.pk
        else set()
    )
    if already:
        who = "You have" if actor.pk in already else f"{principal} has"
        where = "on this request" if scope is None else f"in stage '{stage.name}'"
        raise errors.Forbidden(
            f"{who} already decided {where}; one person decides once, also through a delegation."
        )
    return plan_decision(
        request=request,
        policy=policy,
        outcome=name,
        actor=actor,
        principal=principal,
        open_handoffs=open_handoffs,
        states=STATES,
    )


# --- submission ----------------------------------------------------------------------------


def _current_policy(request: ApprovalRequest) -> PolicyVersion:
    current = request.request_type.current_policy_id
    version = (
        PolicyVersion.objects.filter(pk=current, status=PolicyVersion.Status.PUBLISHED).first()
        if current is not None
        else None
    )
    if version is None:
        message = f"{request.request_type} has no published approval policy yet; ask an administrator."
        raise errors.InvalidInput(message, field_errors={"request_type": [message]})
    return version


def _check_payload(request: ApprovalRequest, payload: Any) -> None:
    problems = payload_errors(schema=request.request_type.payload_schema, payload=payload)
    if problems:
        raise errors.InvalidInput("Some fields need attention.", field_errors=problems)


def _plan_resubmit(
    request: ApprovalRequest, *, data: dict[str, Any], open_handoffs: list[Handoff]
) -> RoutePlan:
    field_errors: dict[str, list[str]] = {}
    for name in sorted(set(data) - set(RESUBMIT_FIELDS)):
        field_errors[name] = ["This field cannot be changed on resubmission."]
    title = request.title
    if "title" in data:
        title = str(data["title"] or "").strip()
        if not title:
            field_errors["title"] = ["A title is required."]
        elif len(title) > TITLE_MAX:
            field_errors["title"] = [f"At most {TITLE_MAX} characters (got {len(title)})."]
    description = str(data.get("description") or "") if "description" in data else request.description
    payload = data.get("payload", request.payload)
    field_errors.update(payload_errors(schema=request.request_type.payload_schema, payload=payload))
    if field_errors:
        raise errors.InvalidInput("The resubmission is invalid.", field_errors=field_errors)
    version = request.policy_version
    assert version is not None
    number = request.revision + 1
    revision = RevisionSpec(
        number=number,
        title=title,
        description=description,
        payload=payload,
        diff=revision_diff(
            before={"title": request.title, "description": request.description, "payload": request.payload},
            after={"title": title, "description": description, "payload": payload},
        ),
    )
    plan = plan_submit(
        request=request,
        policy=version.policy,
        version_id=version.pk,
        payload=payload,
        revision=number,
        states=STATES,
        open_handoffs=open_handoffs,
    )
    plan.revision = revision
    plan.audit["revision"] = {"number": number, "diff": revision.diff}
    return plan


def revision_diff(*, before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed between two revisions: title, description and each payload field."""
    changes = [
        {"field": name, "before": before[name], "after": after[name]}
        for name in ("title", "description")
        if before[name] != after[name]
    ]
    old, new = before["payload"] or {}, after["payload"] or {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changes.append({"field": f"payload.{key}", "before": old.get(key), "after": new.get(key)})
    return changes


# --- policy moves --------------------------------------------------------------------------


def _move_target(request: ApprovalRequest, data: dict[str, Any]) -> PolicyVersion:
    raw = data.get("version")
    version = (
        PolicyVersion.objects.filter(pk=raw, request_type_id=request.request_type_id).first()
        if isinstance(raw, int)
        else None
    )
    if version is None or not version.is_published:
        message = f"Choose a published policy version of {request.request_type}."
        raise errors.InvalidInput(message, field_errors={"version": [message]})
    if version.pk == request.policy_version_id:
        message = f"{request.reference} already follows {version}."
        raise errors.InvalidInput(message, field_errors={"version": [message]})
    return version
