"""Complete a task, or hand it back: the work in a request's task stages.

Who may: whoever holds an open handoff of a task of the step the request waits in (its
holders, or someone acting for them), unless the stage says `distinct_from` a stage they
took part in (the person who approves a payment is not the one who makes it).

Complete: the outputs are checked against the stage's JSON Schema (each error names
its field), stored with the request under the stage's name, recorded in the audit trail
with the note for the next holder (the comment); the task's handoffs close. When the
step's rule is met (one task; or any / all / a quorum of a parallel group's tasks that
apply) the request moves on to the next step that needs someone, or ends: fulfilled.

Hand back (a reason is required): as the stage's `if_not_done` says — to the requester,
who changes the request and resubmits it; to an earlier task stage, which is done again
(and every task after it); or the request ends, not fulfilled.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from approvals.actions import Action
from approvals.lifecycle.base import RequestAction, RequestStep, distinct_from_refusal, inactive_refusal
from approvals.lifecycle.decide import CHANGES_STAGE
from approvals.models import RouteChange, State, TaskCompletion
from approvals.records import TaskRecord
from approvals.route import RoutePlan, entry_change, route_enter
from approvals.routing import NOT_FULFILLED, TO_REQUESTER, Stage
from approvals.schemas import output_errors
from workflows import errors
from workflows.models import Handoff, HandoffSpec
from workflows.permissions import holds_handoff

if TYPE_CHECKING:
    from accounts.models import User


def task_handoffs(step: RequestStep, user: User | None) -> list[Handoff]:
    """The open handoffs of the request's current task step that `user` holds."""
    request = step.instance
    policy, index = request.policy, request.stage_index
    if user is None or policy is None or index is None or not policy.stages[index].is_task:
        return []
    members = {policy.stages[i].name for i in policy.step_of(index)}
    return [h for h in step.facts.open_handoffs if h.stage in members and holds_handoff(user=user, handoff=h)]


def task_of(step: RequestStep) -> tuple[Stage, Handoff]:
    """The task the principal acts on, and the handoff they hold for it: the one named in
    the input (`stage`), or the only one they hold."""
    held = task_handoffs(step, step.principal)
    if not held:
        raise errors.Forbidden("No task of this request is waiting for you.")
    named = step.data.get("stage")
    if named:
        held = [h for h in held if h.stage == named]
        if not held:
            raise errors.Forbidden(f"Task '{named}' is not waiting for you.")
    elif len({h.stage for h in held}) > 1:
        stages = ", ".join(sorted({h.stage for h in held}))
        message = f"Say which task: you hold {stages}."
        raise errors.InvalidInput(message, field_errors={"stage": [message]})
    policy = step.instance.policy
    assert policy is not None
    stage = policy.stages[policy.stage_index(held[0].stage) or 0]
    return stage, held[0]


class TaskAction(RequestAction):
    """The checks shared by completing a task and handing it back."""

    def allowed(self, step: RequestStep) -> bool:
        held = task_handoffs(step, step.principal)
        if not held:
            return False
        policy = step.instance.policy
        assert policy is not None
        stages = [policy.stages[policy.stage_index(h.stage) or 0] for h in held]
        return any(distinct_from_refusal(step, stage=s, person=step.principal) is None for s in stages)

    def refusal(self, step: RequestStep) -> str:
        inactive = inactive_refusal(step.principal)
        if inactive:
            return inactive
        request = step.instance
        stage = request.current_stage
        if stage is None or not stage.is_task:
            return "The request is not waiting for a task to be done."
        held = task_handoffs(step, step.principal)
        if held:
            policy = request.policy
            assert policy is not None
            for handoff in held:
                refusal = distinct_from_refusal(
                    step, stage=policy.stages[policy.stage_index(handoff.stage) or 0], person=step.principal
                )
                if refusal:
                    return refusal
        return "No task of this request is waiting for you."

    def checked(self, step: RequestStep) -> tuple[Stage, Handoff]:
        """The task acted on, after separation of duties for the actor as well."""
        stage, handoff = task_of(step)
        for person in (step.principal, step.actor):
            refusal = distinct_from_refusal(step, stage=stage, person=person)
            if refusal:
                raise errors.Forbidden(refusal)
        return stage, handoff

    def completion(self, step: RequestStep, *, stage: Stage, outcome: str, **fields: Any) -> TaskCompletion:
        request = step.instance
        assert step.principal is not None
        assert step.actor is not None
        policy = request.policy
        assert policy is not None
        return TaskCompletion(
            request=request,
            revision=request.revision,
            stage_index=policy.stage_index(stage.name) or 0,
            stage_name=stage.name,
            outcome=outcome,
            principal=step.principal,
            actor=step.actor,
            **fields,
        )


class Complete(TaskAction):
    """Takes `outputs` (checked against the stage's schema) and, when the principal holds
    several tasks of the step, `stage`. The comment is the note for the next holder."""

    action = Action.COMPLETE

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request = step.instance
        stage, _ = self.checked(step)
        outputs = step.data.get("outputs", {})
        problems = output_errors(schema=stage.outputs or {}, outputs=outputs)
        if problems:
            raise errors.InvalidInput(
                f"The outputs of task '{stage.name}' need attention.", field_errors=problems
            )
        all_outputs = {**(request.outputs or {}), stage.name: outputs}
        completion = self.completion(
            step, stage=stage, outcome=TaskCompletion.Outcome.COMPLETED, outputs=outputs, note=step.comment
        )
        record = TaskRecord(stage=stage.name, outcome=TaskCompletion.Outcome.COMPLETED, outputs=outputs)
        policy, version, index = request.policy, request.policy_version, request.stage_index
        assert policy is not None
        assert version is not None
        assert index is not None
        completed = step.facts.tasks_completed() | {stage.name}
        # The step's rule counted with this task done: the route walks on from the step,
        # which it passes when met (or waits in, with this task's handoffs closed).
        entry = route_enter(
            request=request,
            policy=policy,
            payload=request.payload,
            revision=request.revision,
            decisions=step.facts.decisions,
            outputs=all_outputs,
            completed=completed,
            start=policy.step_of(index)[0],
        )
        change, specs, route = entry_change(entry=entry, policy=policy, version=version, came_from=stage.name)
        change = dataclasses.replace(change, outputs=all_outputs)
        plan = RoutePlan(change=change, rows=[completion], task=record, route=route)
        if entry.index == index and not entry.failed:
            # Still in this step: only this task's handoffs close; the others stay open.
            plan.close = [h for h in step.facts.open_handoffs if h.stage == stage.name]
        else:
            plan.close, plan.open = list(step.facts.open_handoffs), specs
        step.plan = plan
        return {"change": plan.change}


class HandBack(TaskAction):
    """A task that cannot be done: the comment says why; `if_not_done` says where it goes."""

    action = Action.HAND_BACK

    def prepare(self, step: RequestStep) -> dict[str, RouteChange]:
        request = step.instance
        stage, _ = self.checked(step)
        reason = step.comment.strip()
        if not reason:
            message = self.action.comment_required
            raise errors.InvalidInput(message, field_errors={"comment": [message]})
        target = stage.if_not_done
        completion = self.completion(
            step, stage=stage, outcome=TaskCompletion.Outcome.NOT_DONE, note=reason, target=target
        )
        record = TaskRecord(stage=stage.name, outcome=TaskCompletion.Outcome.NOT_DONE, target=target)
        version = request.policy_version
        close = list(step.facts.open_handoffs)
        if target == TO_REQUESTER:
            plan = RoutePlan(
                change=RouteChange(target=State.CHANGES_REQUESTED, policy_version=version, stage_index=None),
                close=close,
                open=[HandoffSpec(user=request.requester, stage=CHANGES_STAGE, slot="requester")],
            )
        elif target == NOT_FULFILLED:
            plan = RoutePlan(
                change=RouteChange(target=State.NOT_FULFILLED, policy_version=version, stage_index=None),
                close=close,
            )
        else:
            policy = request.policy
            assert policy is not None
            assert version is not None
            start = policy.stage_index(target)
            assert start is not None, "the policy check names an earlier task stage"

            # Done again from that task on: completions of it and of every later stage no
            # longer count (approvals.lifecycle.base.RequestFacts.tasks_completed).
            def before(name: str) -> bool:
                return (policy.stage_index(name) or 0) < start

            completed = {n for n in step.facts.tasks_completed() if before(n)}
            # What the tasks to be done again handed on no longer stands.
            outputs = {name: value for name, value in (request.outputs or {}).items() if before(name)}
            entry = route_enter(
                request=request,
                policy=policy,
                payload=request.payload,
                revision=request.revision,
                decisions=step.facts.decisions,
                outputs=outputs,
                completed=completed,
                start=policy.step_of(start)[0],
            )
            change, specs, route = entry_change(
                entry=entry, policy=policy, version=version, came_from=stage.name
            )
            change = dataclasses.replace(change, outputs=outputs)
            plan = RoutePlan(change=change, close=close, open=specs, route=route)
        plan.rows, plan.task = [completion], record
        step.plan = plan
        return {"change": plan.change}
