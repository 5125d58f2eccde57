"""Move a request in flight to another version of its type's policy: an administrator's
explicit step (dry run first: approvals.publishing.policy_move_plan), audited like any.

Who may: a superuser, or the system (a command run by an operator).

What it does: in review, the request re-enters the new version's route from the start;
decisions of this revision count again for stages of the same name. Waiting for
changes, only the version changes (it is routed from the start when resubmitted anyway).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from approvals.actions import Action
from approvals.lifecycle.base import RequestAction, RequestStep, inactive_refusal
from approvals.models import ApprovalRequest, PolicyVersion, RouteChange, State
from approvals.records import PolicyMoveRecord
from approvals.route import RoutePlan, entry_change, route_enter
from workflows import errors
from workflows.models import Handoff


def move_target(request: ApprovalRequest, data: Any) -> PolicyVersion:
    """The published version of the request's type named by `data['version']`."""
    raw = data.get("version")
    version = (
        PolicyVersion.objects.filter(pk=raw, request_type_id=request.request_type_id).first()
        if isinstance(raw, int) and not isinstance(raw, bool)
        else None
    )
    if version is None or not version.is_published:
        message = f"Choose a published policy version of {request.request_type}."
        raise errors.InvalidInput(message, field_errors={"version": [message]})
    if version.pk == request.policy_version_id:
        message = f"{request.reference} already follows {version}."
        raise errors.InvalidInput(message, field_errors={"version": [message]})
    return version


def move_plan(
    *,
    request: ApprovalRequest,
    version: PolicyVersion,
    open_handoffs: list[Handoff],
    decisions: list[Any],
    completed: Collection[str] = (),
) -> RoutePlan:
    """Where moving `request` to `version` takes it (also the dry run's answer). Reads only."""
    moved = PolicyMoveRecord(from_version=request.policy_version_id, to_version=version.pk)
    if request.state == State.CHANGES_REQUESTED:
        return RoutePlan(
            change=RouteChange(target=State.CHANGES_REQUESTED, policy_version=version, stage_index=None),
            policy=moved,
        )
    policy = version.policy
    # Decisions and task completions of this revision count again for stages of the same name.
    entry = route_enter(
        request=request,
        policy=policy,
        payload=request.payload,
        revision=request.revision,
        decisions=decisions,
        outputs=request.outputs,
        completed=completed,
    )
    change, specs, route = entry_change(entry=entry, policy=policy, version=version)
    return RoutePlan(change=change, close=list(open_handoffs), open=specs, route=route, policy=moved)


class MovePolicy(RequestAction):
    """Takes `version`: the id of a published version of the request's type."""

    action = Action.MOVE_POLICY

    def allowed(self, step: RequestStep) -> bool:
        return step.principal is not None and step.principal.is_active and step.principal.is_superuser

    def refusal(self, step: RequestStep) -> str:
        return (
            inactive_refusal(step.principal)
            or "Only an administrator can move a request to another policy version."
        )

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        version = move_target(step.instance, step.data)
        step.plan = move_plan(
            request=step.instance,
            version=version,
            open_handoffs=step.facts.open_handoffs,
            decisions=step.facts.decisions,
            completed=step.facts.tasks_completed(),
        )
        return {"change": step.plan.change}
