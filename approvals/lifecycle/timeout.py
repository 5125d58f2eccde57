"""A stage decided by its policy when its SLA runs out (`on_overdue: approve | reject`).

Who may: nobody but the system (the timers scan, approvals.timers), which passes the
stage it found overdue: a request that has moved on since is refused, never decided
twice. What it does: the stage is approved (the request enters the next stage that needs
someone, or is approved) or rejected, recorded as the system's decision (no person
decided: the audit entry has no actor and says it was automatic), every open handoff of
the stage closes.
"""

from __future__ import annotations

from approvals.actions import Action
from approvals.lifecycle.base import RequestAction, RequestStep
from approvals.models import RouteChange, State
from approvals.records import DecisionRecord
from approvals.route import RoutePlan, entry_change, route_enter
from workflows import errors

AUTOMATIC_OUTCOMES = ("approve", "reject")


class TimeOut(RequestAction):
    action = Action.TIME_OUT

    def allowed(self, step: RequestStep) -> bool:
        return False  # a person never does this; the system skips the role check

    def refusal(self, step: RequestStep) -> str:
        return "Only Baton decides a stage automatically, when its time runs out."

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request = step.instance
        policy, stage, index = request.policy, request.current_stage, request.stage_index
        overdue = step.data.get("stage")
        if policy is None or stage is None or index is None or stage.name != overdue:
            raise errors.TransitionNotAllowed(
                f"{request.reference} is no longer waiting in stage '{overdue}'."
            )
        outcome = stage.on_overdue
        if outcome not in AUTOMATIC_OUTCOMES:
            raise errors.TransitionNotAllowed(
                f"The policy does not decide stage '{stage.name}' automatically (on_overdue: {outcome or 'unset'})."
            )
        version = request.policy_version
        assert version is not None
        record = DecisionRecord(
            stage=stage.name,
            outcome=outcome,
            revision=request.revision,
            slot="",
            stage_outcome="met" if outcome == "approve" else "failed",
        )
        if outcome == "reject":
            step.plan = RoutePlan(
                change=RouteChange(target=State.REJECTED, policy_version=version, stage_index=None),
                close=list(step.facts.open_handoffs),
                decision=record,
            )
        else:
            entry = route_enter(
                request=request,
                policy=policy,
                payload=request.payload,
                revision=request.revision,
                decisions=step.facts.decisions,
                outputs=request.outputs,
                completed=step.facts.tasks_completed() if policy.has_tasks else (),
                start=index + 1,
            )
            change, specs, route = entry_change(
                entry=entry, policy=policy, version=version, came_from=stage.name
            )
            step.plan = RoutePlan(
                change=change, close=list(step.facts.open_handoffs), open=specs, decision=record, route=route
            )
        return {"change": step.plan.change}
