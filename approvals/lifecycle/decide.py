"""Approve, reject, ask for changes: an approver's say in the stage a request waits in.

Who may: an active approver (role permission) holding an open handoff of the request's
current stage, never its requester, and — separation of duties — once per revision (once
per stage where the policy allows more). A delegate acting for someone is held to the
same, for both people.

What it does: records the decision. Asking for changes hands the request back to its
requester. Otherwise the stage's rule (any / all / quorum, veto) is counted with this
decision: met — the request moves on to the next stage that needs someone (or is
approved); failed — it is rejected; pending — this person's handoff closes and the
others wait.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from approvals.actions import Action
from approvals.lifecycle.base import RequestAction, RequestStep, distinct_from_refusal, inactive_refusal
from approvals.models import ApprovalRequest, Decision, RouteChange, State
from approvals.records import DecisionRecord
from approvals.route import (
    RoutePlan,
    Slot,
    deciders_this_revision,
    decisions_counted,
    entry_change,
    route_enter,
    stage_result,
    undecided,
)
from workflows import errors
from workflows.models import Handoff, HandoffSpec
from workflows.permissions import holds_handoff

if TYPE_CHECKING:
    from accounts.models import User

DECIDE_PERMISSION = "approvals.decide_approvalrequest"
CHANGES_STAGE = "changes"  # the stage name of the handoff back to the requester


def already_decided(step: RequestStep) -> bool:
    """Whether the principal has already had their say where the policy allows only one."""
    request, user = step.instance, step.principal
    assert user is not None
    policy, stage = request.policy, request.current_stage
    scope = None if policy is None or stage is None or policy.one_decision_per_person else stage.name
    return user.pk in deciders_this_revision(step.facts.decisions, request=request, stage_name=scope)


def through_handoff(*, principal: User, open_handoffs: list[Handoff]) -> Handoff | None:
    """The open handoff `principal` decides through: their own before their group's."""
    held = [h for h in open_handoffs if holds_handoff(user=principal, handoff=h)]
    held.sort(key=lambda h: (h.assignee_id != principal.pk or h.candidate_group_id is not None, h.pk))
    return held[0] if held else None


class Decide(RequestAction):
    """The checks and the route change shared by the three decisions."""

    def allowed(self, step: RequestStep) -> bool:
        request, user = step.instance, step.principal
        if user is None or not user.is_active or request.requester_id == user.pk:
            return False
        if not user.has_perm(DECIDE_PERMISSION):
            return False
        if not any(holds_handoff(user=user, handoff=h) for h in step.facts.open_handoffs):
            return False
        stage = request.current_stage
        if stage is not None and distinct_from_refusal(step, stage=stage, person=user):
            return False
        return not already_decided(step)

    def refusal(self, step: RequestStep) -> str:
        request, user = step.instance, step.principal
        inactive = inactive_refusal(user)
        if inactive or user is None:
            return inactive or ""
        if request.requester_id == user.pk:
            return "You cannot decide on your own request."
        if not user.has_perm(DECIDE_PERMISSION):
            return "You are not an approver."
        if already_decided(step):
            return "You have already decided on this request."
        stage = request.current_stage
        refusal = distinct_from_refusal(step, stage=stage, person=user) if stage is not None else None
        return refusal or "This request is not waiting for you."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request, actor, principal = step.instance, step.actor, step.principal
        assert actor is not None
        assert principal is not None
        if actor.pk == request.requester_id:
            # The principal was checked by the permission; this closes the delegation loophole.
            raise errors.Forbidden("You cannot decide on your own request, not even on someone's behalf.")
        needs_comment = self.action.comment_required
        if needs_comment and not step.comment.strip():
            raise errors.InvalidInput(needs_comment, field_errors={"comment": [needs_comment]})
        policy, stage = request.policy, request.current_stage
        if policy is None or stage is None or request.stage_index is None:
            raise errors.TransitionNotAllowed(f"{request.reference} is not waiting in any stage.")
        if actor.pk != principal.pk:
            # The permission check refused a principal who has had their say; a delegate
            # acting for them must not have had theirs either.
            scope = None if policy.one_decision_per_person else stage.name
            spoke = deciders_this_revision(step.facts.decisions, request=request, stage_name=scope)
            already = spoke & {actor.pk, principal.pk}
            if already:
                who = "You have" if actor.pk in already else f"{principal} has"
                where = "on this request" if scope is None else f"in stage '{stage.name}'"
                raise errors.Forbidden(
                    f"{who} already decided {where}; one person decides once, also through a delegation."
                )
        refusal = distinct_from_refusal(step, stage=stage, person=actor)
        if refusal:
            raise errors.Forbidden(refusal)
        through = through_handoff(principal=principal, open_handoffs=step.facts.open_handoffs)
        if through is None:
            raise errors.Forbidden("This request is not waiting for you.")
        decision = Decision(
            request=request,
            revision=request.revision,
            stage_index=request.stage_index,
            stage_name=stage.name,
            outcome=self.name,
            principal=principal,
            actor=actor,
            slot=through.slot,
            comment=step.comment,
        )
        record = DecisionRecord(
            stage=stage.name, outcome=self.name, revision=request.revision, slot=through.slot
        )
        step.plan = self.route(step, decision=decision, record=record, through=through)
        return {"change": step.plan.change}

    def route(
        self, step: RequestStep, *, decision: Decision, record: DecisionRecord, through: Handoff
    ) -> RoutePlan:
        """Count the stage with this decision and say where the request goes."""
        request = step.instance
        policy, stage, index = request.policy, request.current_stage, request.stage_index
        assert policy is not None
        assert stage is not None
        assert index is not None
        counted = decisions_counted(
            step.facts.decisions, request=request, policy=policy, revision=request.revision
        )
        made = [*counted.get(stage.name, []), decision]
        decided = {d.principal_id for d in made} | {d.actor_id for d in made}

        def still_to_decide() -> int:
            # Those holding the stage's other handoffs, and the rest of this one's group.
            remaining = [h for h in step.facts.open_handoffs if h.pk != through.pk]
            slots = [
                Slot(key=h.slot, user=h.assignee, group=None if h.assignee_id else h.candidate_group)
                for h in remaining
            ] + (
                [Slot(key=through.slot, group=through.candidate_group)] if through.candidate_group_id else []
            )
            return undecided(slots, decided=decided, requester_id=request.requester_id)

        result, tally = stage_result(
            stage, decisions=made, slot_keys=list(request.stage_slots), still_to_decide=still_to_decide
        )
        if self.action == Action.APPROVE and result == "failed":
            # Too few people left to reach the quorum (e.g. a delegate who speaks for
            # someone cannot also speak for themselves): an approval must never reject.
            raise errors.TransitionNotAllowed(
                f"Stage '{stage.name}' could not be met after this approval: it needs {stage.needed} "
                f"approvals and only {tally.approvals + tally.undecided} people could give them. "
                "Decide for yourself, or ask an administrator."
            )
        version = request.policy_version
        record = dataclasses.replace(record, stage_outcome=result)
        if result == "met":
            entry = route_enter(
                request=request,
                policy=policy,
                payload=request.payload,
                revision=request.revision,
                decisions=step.facts.decisions,
                outputs=request.outputs,
                completed=step.facts.tasks_completed() if policy.has_tasks else (),
                start=index + 1,
                deciding=decision,
            )
            assert version is not None
            change, specs, route = entry_change(
                entry=entry, policy=policy, version=version, came_from=stage.name
            )
            return RoutePlan(
                change=change,
                close=list(step.facts.open_handoffs),
                open=specs,
                rows=[decision],
                decision=record,
                route=route,
            )
        if result == "failed":
            return RoutePlan(
                change=RouteChange(target=State.REJECTED, policy_version=version, stage_index=None),
                close=list(step.facts.open_handoffs),
                rows=[decision],
                decision=record,
            )
        plan = RoutePlan(
            change=RouteChange(
                target=State.IN_REVIEW,
                policy_version=version,
                stage_index=index,
                stage_slots=list(request.stage_slots),
            ),
            close=[through],
            rows=[decision],
            decision=record,
        )
        if self.action == Action.REJECT and through.candidate_group_id is not None:
            # A group's place stays open for its other members: a dissent is not a veto here.
            plan.open.append(
                HandoffSpec(
                    group=through.candidate_group, stage=stage.name, slot=through.slot, due_at=through.due_at
                )
            )
        return plan


class Approve(Decide):
    action = Action.APPROVE


class Reject(Decide):
    action = Action.REJECT


class RequestChanges(Decide):
    """Hands the request back to its requester, whatever the stage's rule."""

    action = Action.REQUEST_CHANGES

    def route(
        self, step: RequestStep, *, decision: Decision, record: DecisionRecord, through: Handoff
    ) -> RoutePlan:
        request: ApprovalRequest = step.instance
        return RoutePlan(
            change=RouteChange(
                target=State.CHANGES_REQUESTED, policy_version=request.policy_version, stage_index=None
            ),
            close=list(step.facts.open_handoffs),
            open=[HandoffSpec(user=request.requester, stage=CHANGES_STAGE, slot="requester")],
            rows=[decision],
            decision=record,
        )
