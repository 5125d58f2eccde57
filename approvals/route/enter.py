"""Entering a request's route at a stage, and simulating the route a request would take."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from accounts.models import User
from approvals.models import ApprovalRequest, Decision, PolicyVersion, RouteChange, State
from approvals.records import RouteRecord, SkippedStage
from approvals.route.counting import decisions_counted, stage_result, undecided
from approvals.route.plan import Slot, StageEntry, route_data
from approvals.route.slots import escalation_slots, handoff_specs, stage_slots, too_few
from approvals.routing import (
    OUTPUTS,
    Policy,
    Route,
    RouteStep,
    Stage,
    condition_explain,
    condition_holds,
)
from approvals.routing.conditions import condition_leaves
from workflows import errors
from workflows.models import HandoffSpec


def route_enter(
    *,
    request: ApprovalRequest,
    policy: Policy,
    payload: Mapping[str, Any],
    revision: int,
    decisions: Sequence[Decision],
    outputs: Mapping[str, Any] | None = None,
    completed: Collection[str] = (),
    start: int = 0,
    deciding: Decision | None = None,
    after_task: bool = False,
) -> StageEntry:
    """Walk from stage `start`: skip stages whose condition is false, pass stages already
    met by decisions that count (or task steps whose tasks are `completed`), and stop at
    the first step that needs someone: a decision stage, or a task step (one task, or a
    parallel group) with work left.

    `decisions` are all of the request's; `deciding` the one being taken now (not yet
    written); `outputs` what its tasks handed on; `after_task` whether the step just
    finished was a task step. Raises InvalidInput when the step has nobody who could fill
    it and no escalation target (e.g. the requester has no manager): better a clear
    refusal than a request waiting for no one.
    """
    requester = request.requester
    data = route_data(payload, outputs or {})
    counted = decisions_counted(decisions, request=request, policy=policy, revision=revision)
    if deciding is not None:
        counted.setdefault(deciding.stage_name, []).append(deciding)
    entry = StageEntry(index=None, after_task=after_task)
    index = start
    while index < len(policy.stages):
        stage = policy.stages[index]
        if stage.is_task:
            step = policy.step_of(index)
            if _task_step_waits(
                entry, request=request, policy=policy, step=step, data=data, completed=completed
            ):
                return entry
            index = step[-1] + 1
            continue
        index += 1
        if not condition_holds(stage.condition, data):
            assert stage.condition is not None
            entry.skipped.append((stage.name, condition_explain(stage.condition, data)))
            continue
        slots = stage_slots(stage, requester=requester, data=data)
        if policy.one_decision_per_person:
            # Whoever already decided in another stage cannot decide again: their place
            # here would wait for ever.
            spoke = {
                person
                for name, made in counted.items()
                if name != stage.name
                for d in made
                for person in (d.principal_id, d.actor_id)
            }
            slots = [s for s in slots if s.user is None or s.user.pk not in spoke]
        slots = _filled(entry, request=request, stage=stage, slots=slots)
        made = counted.get(stage.name, [])
        entry.index, entry.slots = index - 1, slots
        if not made:
            entry.waiting = slots
            return entry
        decided = {d.principal_id for d in made} | {d.actor_id for d in made}
        outcome, tally = stage_result(
            stage,
            decisions=made,
            slot_keys=[s.key for s in slots],
            still_to_decide=lambda: undecided(slots, decided=decided, requester_id=requester.pk),  # noqa: B023  (called at once)
        )
        if outcome == "met":
            entry.met.append(stage.name)
            entry.index, entry.slots, entry.after_task = None, [], False
            continue
        if outcome == "failed":
            entry.failed = True
            return entry
        entry.waiting = [
            s
            for s in slots
            if s.key not in tally.approved_slots and not (s.user is not None and s.user.pk in decided)
        ]
        return entry
    return entry


def _filled(entry: StageEntry, *, request: ApprovalRequest, stage: Stage, slots: list[Slot]) -> list[Slot]:
    """`slots`, or the stage's escalation target standing in when they cannot fill it."""
    if not too_few(stage, slots):
        return slots
    stand_in = escalation_slots(stage, requester=request.requester)
    if not stand_in:
        what = "do" if stage.is_task else "approve"
        message = (
            f"Stage '{stage.name}' of the {request.request_type} policy has nobody who could {what} "
            f"it for this request ({stage.approvers.describe()}). "
            "Ask an administrator to fix the policy or the people it names."
        )
        raise errors.InvalidInput(message, field_errors={"request_type": [message]})
    verb = "do" if stage.is_task else "approve"
    entry.note = f"nobody could {verb} stage '{stage.name}'; handed to {stage.escalate_to.describe()}"  # type: ignore[union-attr]
    return stand_in


def _task_step_waits(
    entry: StageEntry,
    *,
    request: ApprovalRequest,
    policy: Policy,
    step: tuple[int, ...],
    data: Mapping[str, Any],
    completed: Collection[str],
) -> bool:
    """Enter a task step: True (and `entry` says where) when it has work left; False when
    none of its tasks applies or its rule is already met by the tasks `completed`."""
    applicable = []
    for index in step:
        stage = policy.stages[index]
        if condition_holds(stage.condition, data):
            applicable.append(stage)
        else:
            assert stage.condition is not None
            entry.skipped.append((stage.name, condition_explain(stage.condition, data)))
    if not applicable:
        return False
    done = [s.name for s in applicable if s.name in completed]
    group = policy.stages[step[0]].group
    needed = group.needed(len(applicable)) if group is not None else 1
    if len(done) >= needed:
        entry.met += done
        entry.after_task = True
        return False
    waiting: list[Slot] = []
    for stage in applicable:
        if stage.name not in done:
            waiting += _filled(
                entry,
                request=request,
                stage=stage,
                slots=stage_slots(stage, requester=request.requester, data=data),
            )
    entry.index, entry.slots, entry.waiting = step[0], waiting, waiting
    return True


def entry_change(
    *, entry: StageEntry, policy: Policy, version: PolicyVersion, came_from: str | None = None
) -> tuple[RouteChange, list[HandoffSpec], RouteRecord]:
    """What entering the route at `entry` does: the request's new place, the handoffs to
    open for those still to act, and the route record of the audit entry.

    Past the last stage a request is approved, or fulfilled when the last step it passed
    was a task step. Waiting in a task step it is approved (being fulfilled) unless a
    decision stage comes later, when it is still in review.
    """
    specs: list[HandoffSpec] = []
    if entry.index is None:
        target = State.FULFILLED if entry.after_task else State.APPROVED
        change = RouteChange(target=target, policy_version=version, stage_index=None)
    elif entry.failed:
        change = RouteChange(target=State.REJECTED, policy_version=version, stage_index=None)
    else:
        stage = policy.stages[entry.index]
        target = (
            State.APPROVED if stage.is_task and not policy.decisions_after(entry.index) else State.IN_REVIEW
        )
        change = RouteChange(
            target=target,
            policy_version=version,
            stage_index=entry.index,
            stage_slots=[s.key for s in entry.slots],
        )
        for name in dict.fromkeys(s.stage or stage.name for s in entry.waiting):
            member = policy.stages[policy.stage_index(name) or entry.index]
            specs += handoff_specs(member, [s for s in entry.waiting if (s.stage or stage.name) == name])
    record = RouteRecord(
        to=policy.stages[entry.index].name if entry.index is not None else None,
        came_from=came_from,
        skipped=tuple(SkippedStage(stage=s, reason=r) for s, r in entry.skipped),
        met=tuple(entry.met),
        note=entry.note,
    )
    return change, specs, record


def _reads(stage: Stage) -> tuple[str, ...]:
    fields = [leaf.field for leaf in condition_leaves(stage.condition)] if stage.condition is not None else []
    if stage.approvers.from_output:
        fields.append(stage.approvers.from_output)
    return tuple(dict.fromkeys(fields))


def _produces(stage: Stage) -> tuple[str, ...]:
    if not stage.is_task or not stage.outputs:
        return ()
    return tuple(f"{OUTPUTS}.{stage.name}.{name}" for name in sorted(stage.outputs.get("properties") or {}))


def route_simulate(*, policy: Policy, payload: Mapping[str, Any], requester: User) -> Route:
    """The route a request with `payload` by `requester` would take under `policy`, with
    the people each stage would go to, why stages would be skipped, and which payload
    fields and task outputs each stage depends on. Reads only. A condition on outputs is
    not known before the task producing them is done: such stages are shown as depending
    on it."""
    steps = []
    data = route_data(payload, {})
    for index, stage in enumerate(policy.stages):
        reads = _reads(stage)
        on_outputs = [f for f in reads if f.startswith(f"{OUTPUTS}.")]
        depends = ""
        if on_outputs:
            producers = sorted({f.split(".")[1] for f in on_outputs})
            depends = f"depends on {', '.join(on_outputs)}: known once {', '.join(producers)} is done"
        if not on_outputs and not condition_holds(stage.condition, data):
            assert stage.condition is not None
            steps.append(
                RouteStep(
                    index=index,
                    stage=stage,
                    applies=False,
                    reason=condition_explain(stage.condition, data),
                    reads=reads,
                    produces=_produces(stage),
                )
            )
            continue
        slots = stage_slots(stage, requester=requester, data=data)
        problem = ""
        if too_few(stage, slots) and not stage.approvers.from_output:
            stand_in = escalation_slots(stage, requester=requester)
            people, verb = ("people", "do") if stage.is_task else ("approvers", "approve")
            problem = (
                f"not enough {people}; handed to {stage.escalate_to.describe()}"  # type: ignore[union-attr]
                if stand_in
                else f"nobody could {verb} this stage: submitting would be refused"
            )
            slots = stand_in
        steps.append(
            RouteStep(
                index=index,
                stage=stage,
                applies=True,
                reason="",
                approvers=tuple(s.label for s in slots)
                + ((f"whoever {stage.approvers.from_output} names",) if stage.approvers.from_output else ()),
                problem=problem,
                reads=reads,
                produces=_produces(stage),
                depends=depends,
            )
        )
    return Route(steps=tuple(steps))
