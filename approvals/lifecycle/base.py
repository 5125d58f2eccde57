"""What every lifecycle action of a request shares: the facts it reads, and its effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from approvals.actions import Action
from approvals.models import ApprovalRequest, Decision, State, TaskCompletion
from approvals.route import RoutePlan
from approvals.routing import Stage
from workflows import sql
from workflows.definition import Action as WorkflowAction
from workflows.definition import Facts, Step
from workflows.models import TaskSpec, WorkflowEffects

if TYPE_CHECKING:
    from accounts.models import User

NOTIFY_TASK = "approvals.notify_transition"


@dataclass
class RequestFacts(Facts):
    """What a request's checks and plans read: its open handoffs (given), and its
    decisions and task completions, each read on first use (a draft has none: nothing is
    decided or done before submission)."""

    request: ApprovalRequest | None = None
    loaded: list[Decision] | None = field(default=None, repr=False)
    loaded_completions: list[TaskCompletion] | None = field(default=None, repr=False)

    @property
    def completions(self) -> list[TaskCompletion]:
        """The task completions (and hand-backs) of the request's current revision, in order."""
        if self.loaded_completions is None:
            request = self.request
            if request is None or request.pk is None or request.state == State.DRAFT:
                self.loaded_completions = []
            else:
                self.loaded_completions = sql.rows_select(
                    TaskCompletion,
                    where="request_id = %s AND revision = %s",
                    params=[request.pk, request.revision],
                    order_by="id",
                )
        return self.loaded_completions

    def tasks_completed(self) -> set[str]:
        """The task stages whose completion counts now: done in this revision and not
        undone since by a hand-back to them or an earlier task stage."""
        request = self.request
        policy = request.policy if request is not None else None
        done: set[str] = set()
        for completion in self.completions:
            if completion.outcome == TaskCompletion.Outcome.COMPLETED:
                done.add(completion.stage_name)
            elif policy is not None and (target := policy.stage_index(completion.target)) is not None:
                done = {name for name in done if (policy.stage_index(name) or 0) < target}
        return done

    def acted_in(self, stage_name: str) -> set[int]:
        """Everyone who decided in, or did the task of, stage `stage_name` in this revision
        (principals and actors): who `distinct_from` keeps out of later stages."""
        people: set[int] = set()
        for d in self.decisions:  # those that count now (carried-over approvals included)
            if d.stage_name == stage_name:
                people.update((d.principal_id, d.actor_id))
        for c in self.completions:
            if c.stage_name == stage_name and c.outcome == TaskCompletion.Outcome.COMPLETED:
                people.update((c.principal_id, c.actor_id))
        return people

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


@dataclass(frozen=True)
class ActionOption:
    """One lifecycle action as a person sees it on a request: whether they can take it
    now and, where the state allows it but they may not, why not."""

    action: Action
    allowed: bool
    reason: str = ""


def inactive_refusal(user: User | None) -> str | None:
    if user is None or not user.is_active:
        return "Your account is not active."
    return None


def distinct_from_refusal(step: RequestStep, *, stage: Stage, person: User | None) -> str | None:
    """Why `person` may not act in `stage` because they acted in a stage it must differ
    from (the one who approves a payment is not the one who makes it), or None."""
    if person is None:
        return None
    for other in stage.distinct_from:
        if person.pk in step.facts.acted_in(other):
            return f"You took part in stage '{other}'; stage '{stage.name}' must be done by someone else."
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
