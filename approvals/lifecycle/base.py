"""What every lifecycle action of a request shares: the facts it reads, and its effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from approvals.actions import Action
from approvals.models import ApprovalRequest, Decision, State
from approvals.route import RoutePlan
from workflows import sql
from workflows.definition import Action as WorkflowAction
from workflows.definition import Facts, Step
from workflows.models import TaskSpec, WorkflowEffects

if TYPE_CHECKING:
    from accounts.models import User

NOTIFY_TASK = "approvals.notify_transition"


@dataclass
class RequestFacts(Facts):
    """What a request's checks and plans read: its open handoffs (given) and its
    decisions, read on first use (a draft has none: nobody decides before submission)."""

    request: ApprovalRequest | None = None
    loaded: list[Decision] | None = field(default=None, repr=False)

    @property
    def decisions(self) -> list[Decision]:
        """The decisions on the request that can still count, in the order they were
        taken: those of its current revision, and the approvals of earlier ones where its
        policy carries approvals over (approvals.route.counting decides which count where)."""
        if self.loaded is None:
            request = self.request
            if request is None or request.pk is None or request.state == State.DRAFT:
                self.loaded = []
            else:
                policy = request.policy
                where = "request_id = %s AND (revision = %s"
                params: list[object] = [request.pk, request.revision]
                if policy is not None and policy.carry_over_approvals:
                    where += " OR outcome = %s"
                    params.append(Decision.Outcome.APPROVE.value)
                self.loaded = sql.rows_select(Decision, where=where + ")", params=params, order_by="id")
        return self.loaded


RequestStep = Step[ApprovalRequest, RequestFacts]


def inactive_refusal(user: User | None) -> str | None:
    if user is None or not user.is_active:
        return "Your account is not active."
    return None


class RequestAction(WorkflowAction[ApprovalRequest, RequestFacts]):
    """A lifecycle action of a request: `prepare` leaves a RoutePlan on `step.plan` and
    returns the change for the transition method; `effects` hands over what the plan says."""

    action: Action

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "action" in cls.__dict__:
            cls.name = cls.action.value

    def plan_of(self, step: RequestStep) -> RoutePlan:
        assert isinstance(step.plan, RoutePlan), "prepare() leaves the action's plan on the step"
        return step.plan

    def effects(self, step: RequestStep) -> WorkflowEffects:
        plan = self.plan_of(step)
        request = step.instance
        return WorkflowEffects(
            close=plan.close,
            open=plan.open,
            rows=plan.rows,
            tasks=[TaskSpec(name=NOTIFY_TASK, kwargs={"request_id": request.pk, "action": self.name})],
            audit_data=plan.sections(),
        )
