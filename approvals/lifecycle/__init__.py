"""What each lifecycle action of a request means: one home per action, found by its name.

    submit.py   Action.SUBMIT, Action.EDIT (a draft), Action.RESUBMIT
    decide.py   Action.APPROVE, Action.REJECT, Action.REQUEST_CHANGES
    work.py     Action.COMPLETE, Action.HAND_BACK (task stages)
    close.py    Action.WITHDRAW, Action.CANCEL
    move.py     Action.MOVE_POLICY
    timeout.py  Action.TIME_OUT (the system, when a stage's SLA runs out)
    base.py     the facts every action reads, and the effects they share

Each action says who may take it (`allowed`, and `refusal`: why not, in a sentence),
what it changes (`prepare`: input checked, separation of duties, the route worked out
by approvals.route) and what follows (`effects`: handoffs, the decision or revision row,
the audit record, the notification task). The transition service
(workflows.services.transition) calls them with the request's row locked; the django-fsm
graph on ApprovalRequest says from which states each may be taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_fsm import can_proceed

from approvals.actions import OFFERED, Action
from approvals.lifecycle.base import (
    NOTIFY_TASK,
    ActionOption,
    RequestAction,
    RequestFacts,
    RequestStep,
    distinct_from_refusal,
)
from approvals.lifecycle.close import Cancel, Expire, Withdraw
from approvals.lifecycle.decide import CHANGES_STAGE, Approve, Reject, RequestChanges, through_handoff
from approvals.lifecycle.explain import Explanation, WhyNot, request_why_not
from approvals.lifecycle.move import MovePolicy, move_plan
from approvals.lifecycle.submit import Edit, Resubmit, Submit, revision_diff
from approvals.lifecycle.timeout import TimeOut
from approvals.lifecycle.work import Complete, HandBack, task_handoffs
from approvals.models import ApprovalRequest, Decision, RequestRevision
from approvals.routing import Stage
from workflows.definition import Step, Workflow
from workflows.models import Handoff, Recipient, TaskSpec

if TYPE_CHECKING:
    from django.db import models

    from accounts.models import User


class RequestLifecycle(Workflow[ApprovalRequest, RequestFacts]):
    model = ApprovalRequest
    actions = {
        a.name: a
        for a in (
            Submit(),
            Edit(),
            Resubmit(),
            Approve(),
            Reject(),
            RequestChanges(),
            Complete(),
            HandBack(),
            Withdraw(),
            Cancel(),
            Expire(),
            MovePolicy(),
            TimeOut(),
        )
    }
    lock_related = ("request_type", "requester", "policy_version")

    def facts(self, instance: ApprovalRequest, *, open_handoffs: list[Handoff]) -> RequestFacts:
        return RequestFacts(open_handoffs=open_handoffs, request=instance)

    def created(self, instance: ApprovalRequest, *, actor: User | None) -> list[models.Model]:
        """The first revision: what the request said when it was made."""
        return [
            RequestRevision(
                request=instance,
                number=1,
                title=instance.title,
                description=instance.description,
                payload=instance.payload,
                created_by_id=instance.requester_id,
            )
        ]

    def holder_problem(self, instance: ApprovalRequest, *, user: User) -> str | None:
        if user.pk == instance.requester_id:
            return "A request cannot be handed to its own requester."
        return None

    def handoff_tasks(self, instance: ApprovalRequest, *, action: str) -> list[TaskSpec]:
        # A reassignment is news to both holders; a claim or a release is only shown live.
        if action != Action.REASSIGN:
            return []
        return [TaskSpec(name=NOTIFY_TASK, kwargs={"request_id": instance.pk, "action": action})]

    def delegation_scope(self, instance: ApprovalRequest) -> str:
        """A delegation of some request types reaches the requests of those types."""
        return instance.request_type.slug

    def owner_id(self, instance: ApprovalRequest) -> int:
        """Nobody acts for a requester on their own request (withdraw, resubmit, decide)."""
        return instance.requester_id

    def audience(self, instance: ApprovalRequest) -> list[Recipient]:
        return [Recipient(user_id=instance.requester_id)]


LIFECYCLE = RequestLifecycle()


def action_options(
    *,
    request: ApprovalRequest,
    user: User,
    open_handoffs: list[Handoff],
    decisions: list[Decision] | None = None,
    on_behalf_of: User | None = None,
) -> list[ActionOption]:
    """Every offered action the request's state allows, each with whether `user` may take
    it (for `on_behalf_of`, when given: the delegator's rights count) and the refusal they
    would get. The same checks the service runs, on the facts given (the page's own
    reads); the request's decisions are read once if not given. Whether the delegation
    reaches the request is the caller's to know (approvals.policies.delegators_waiting)."""
    facts = RequestFacts(open_handoffs=open_handoffs, request=request, loaded=decisions)
    principal = on_behalf_of or user
    options = []
    for action in OFFERED:
        if not can_proceed(getattr(request, action.value)):
            continue
        handler = LIFECYCLE.actions[action.value]
        step: RequestStep = Step(
            instance=request, name=action.value, actor=user, principal=principal, facts=facts
        )
        allowed = user.is_active and handler.allowed(step)
        options.append(
            ActionOption(action=action, allowed=allowed, reason="" if allowed else handler.refusal(step))
        )
    return options


def tasks_held(*, request: ApprovalRequest, user: User, facts: RequestFacts) -> list[tuple[Stage, Handoff]]:
    """The tasks `user` may do on `request` now, each with the handoff they hold for it
    (the checks of Action.COMPLETE, separation of duties included)."""
    step: RequestStep = Step(instance=request, name=Action.COMPLETE, actor=user, principal=user, facts=facts)
    policy = request.policy
    if policy is None or not user.is_active:
        return []
    held = []
    for handoff in task_handoffs(step, user):
        stage = policy.stages[policy.stage_index(handoff.stage) or 0]
        if distinct_from_refusal(step, stage=stage, person=user) is None:
            held.append((stage, handoff))
    return held


__all__ = [
    "CHANGES_STAGE",
    "LIFECYCLE",
    "ActionOption",
    "Explanation",
    "RequestAction",
    "RequestFacts",
    "RequestLifecycle",
    "WhyNot",
    "action_options",
    "move_plan",
    "request_why_not",
    "revision_diff",
    "task_handoffs",
    "tasks_held",
    "through_handoff",
]
