"""Withdraw and cancel: a request leaves its route before a verdict.

Who may: withdraw — its requester; cancel — a manager (role permission). Both from any
open state; cancelling needs a reason. What it does: every open handoff closes ('superseded'), the route ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from approvals.actions import Action
from approvals.lifecycle.base import RequestAction, RequestStep, inactive_refusal
from approvals.models import RouteChange, State
from approvals.policies import is_requester
from approvals.route import RoutePlan
from workflows import errors

if TYPE_CHECKING:
    from accounts.models import User

CANCEL_PERMISSION = "approvals.cancel_approvalrequest"


def closing(step: RequestStep, *, target: str) -> RoutePlan:
    return RoutePlan(
        change=RouteChange(target=target, policy_version=step.instance.policy_version, stage_index=None),
        close=list(step.facts.open_handoffs),
    )


class Withdraw(RequestAction):
    action = Action.WITHDRAW

    def allowed(self, step: RequestStep) -> bool:
        return step.principal is not None and is_requester(step.instance, step.principal)

    def refusal(self, step: RequestStep) -> str:
        return inactive_refusal(step.principal) or "Only the requester can do this."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        step.plan = closing(step, target=State.WITHDRAWN)
        return {"change": step.plan.change}


def may_cancel(user: User | None) -> bool:
    return user is not None and user.is_active and user.has_perm(CANCEL_PERMISSION)


class Cancel(RequestAction):
    action = Action.CANCEL

    def allowed(self, step: RequestStep) -> bool:
        return may_cancel(step.principal)

    def refusal(self, step: RequestStep) -> str:
        return inactive_refusal(step.principal) or "Only a manager can cancel a request."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        # A person says why (the requester and the holders read it); the system's own
        # cancellations (timers) carry their reason in their comment already.
        if step.actor is not None and not step.comment.strip():
            reason = self.action.comment_required
            raise errors.InvalidInput(reason, field_errors={"comment": [reason]})
        step.plan = closing(step, target=State.CANCELLED)
        return {"change": step.plan.change}


class Expire(RequestAction):
    """Nobody decided before the request's expiry: it ends as expired, its handoffs close.

    Only the system takes it (the transition service skips `allowed` for the system actor);
    a person is always refused. Its own state, never a rejection: clients tell the two apart.
    """

    action = Action.EXPIRE

    def allowed(self, step: RequestStep) -> bool:
        return False

    def refusal(self, step: RequestStep) -> str:
        return "Only the system expires a request, once its expiry has passed."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        step.plan = closing(step, target=State.EXPIRED)
        return {"change": step.plan.change}
