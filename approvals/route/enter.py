"""Entering a request's route at a stage, and simulating the route a request would take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from accounts.models import User
from approvals.models import ApprovalRequest, Decision, PolicyVersion, RouteChange, State
from approvals.records import RouteRecord, SkippedStage
from approvals.route.counting import decisions_counted, stage_result, undecided
from approvals.route.plan import StageEntry
from approvals.route.slots import escalation_slots, handoff_specs, stage_slots, too_few
from approvals.routing import Policy, Route, RouteStep, condition_explain, condition_holds
from workflows import errors
from workflows.models import HandoffSpec


def route_enter(
    *,
    request: ApprovalRequest,
    policy: Policy,
    payload: Mapping[str, Any],
    revision: int,
    decisions: Sequence[Decision],
    start: int = 0,
    deciding: Decision | None = None,
) -> StageEntry:
    """Walk from stage `start`: skip stages whose condition is false, pass stages already
    met by decisions that count, and stop at the first stage that needs someone.

    `decisions` are all of the request's; `deciding` the one being taken now (not yet
    written). Raises InvalidInput when that stage has nobody who could approve it and no
    escalation target (e.g. the requester has no manager): better a clear refusal than a
    request waiting for no one.
    """
    requester = request.requester
    counted = decisions_counted(decisions, request=request, policy=policy, revision=revision)
    if deciding is not None:
        counted.setdefault(deciding.stage_name, []).append(deciding)
    entry = StageEntry(index=None)
    for index in range(start, len(policy.stages)):
        stage = policy.stages[index]
        if not condition_holds(stage.condition, payload):
            assert stage.condition is not None
            entry.skipped.append((stage.name, condition_explain(stage.condition, payload)))
            continue
        slots = stage_slots(stage, requester=requester)
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
        if too_few(stage, slots):
            stand_in = escalation_slots(stage, requester=requester)
            if not stand_in:
                message = (
                    f"Stage '{stage.name}' of the {request.request_type} policy has nobody who could "
                    f"approve it for this request ({stage.approvers.describe()}). "
                    "Ask an administrator to fix the policy or the people it names."
                )
                raise errors.InvalidInput(message, field_errors={"request_type": [message]})
            entry.note = (
                f"nobody could approve stage '{stage.name}'; handed to {stage.escalate_to.describe()}"  # type: ignore[union-attr]
            )
            slots = stand_in
        made = counted.get(stage.name, [])
        entry.index, entry.slots = index, slots
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
            entry.index, entry.slots = None, []
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


def entry_change(
    *, entry: StageEntry, policy: Policy, version: PolicyVersion, came_from: str | None = None
) -> tuple[RouteChange, list[HandoffSpec], RouteRecord]:
    """What entering the route at `entry` does: the request's new place, the handoffs to
    open for those still to decide, and the route record of the audit entry."""
    if entry.index is None:
        change = RouteChange(target=State.APPROVED, policy_version=version, stage_index=None)
        specs: list[HandoffSpec] = []
    elif entry.failed:
        change = RouteChange(target=State.REJECTED, policy_version=version, stage_index=None)
        specs = []
    else:
        stage = policy.stages[entry.index]
        change = RouteChange(
            target=State.IN_REVIEW,
            policy_version=version,
            stage_index=entry.index,
            stage_slots=[s.key for s in entry.slots],
        )
        specs = handoff_specs(stage, entry.waiting)
    record = RouteRecord(
        to=policy.stages[entry.index].name if entry.index is not None else None,
        came_from=came_from,
        skipped=tuple(SkippedStage(stage=s, reason=r) for s, r in entry.skipped),
        met=tuple(entry.met),
        note=entry.note,
    )
    return change, specs, record


def route_simulate(*, policy: Policy, payload: Mapping[str, Any], requester: User) -> Route:
    """The route a request with `payload` by `requester` would take under `policy`, with
    the people each stage would go to and why stages would be skipped. Reads only."""
    steps = []
    for index, stage in enumerate(policy.stages):
        if not condition_holds(stage.condition, payload):
            assert stage.condition is not None
            steps.append(
                RouteStep(
                    index=index,
                    stage=stage,
                    applies=False,
                    reason=condition_explain(stage.condition, payload),
                )
            )
            continue
        slots = stage_slots(stage, requester=requester)
        problem = ""
        if too_few(stage, slots):
            stand_in = escalation_slots(stage, requester=requester)
            problem = (
                f"not enough approvers; handed to {stage.escalate_to.describe()}"  # type: ignore[union-attr]
                if stand_in
                else "nobody could approve this stage: submitting would be refused"
            )
            slots = stand_in
        steps.append(
            RouteStep(
                index=index,
                stage=stage,
                applies=True,
                reason="",
                approvers=tuple(s.label for s in slots),
                problem=problem,
            )
        )
    return Route(steps=tuple(steps))
