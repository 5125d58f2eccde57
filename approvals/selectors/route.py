"""One request's way through its policy, as the request page draws it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.utils.safestring import SafeString

from approvals.actions import ROUTE_STARTS, Action
from approvals.diagrams import StageMark, policy_svg
from approvals.models import ApprovalRequest, Decision, PolicyVersion, State
from approvals.records import request_record
from approvals.route import route_simulate
from approvals.routing import Policy, PolicyError, condition_explain, condition_holds
from workflows.models import AuditEntry, Handoff


@dataclass(frozen=True)
class RouteStepView:
    """One stage of the route in words (beside the diagram): where the request stands."""

    index: int
    name: str
    status: str  # current | met | skipped | failed | "" (not reached)
    note: str
    approvers: str
    rule: str
    condition: str


@dataclass(frozen=True)
class RouteView:
    version: PolicyVersion
    svg: SafeString
    steps: list[RouteStepView]
    # A draft has no route yet: the page shows the one it would take if submitted now.
    preview: bool = False
    problems: list[str] = field(default_factory=list)
    newer: PolicyVersion | None = None


def _names(people: Iterable[str]) -> str:
    unique = list(dict.fromkeys(people))
    return ", ".join(unique)


def route_marks(
    *,
    request: ApprovalRequest,
    policy: Policy,
    entries: list[AuditEntry],
    decisions: list[Decision],
    handoffs: list[Handoff],
) -> dict[int, StageMark]:
    """Where the request stands in each stage of its policy, in its current pass.

    The pass begins with the last submission, resubmission or policy move: the audit
    data of those entries and of the decisions after them say which stages were skipped
    (and why), met (also by approvals that carried over) or failed. The stage the request
    waits in now is 'current'.
    """
    index_of = {stage.name: i for i, stage in enumerate(policy.stages)}
    starts = [i for i, e in enumerate(entries) if e.action in ROUTE_STARTS]
    if not starts:
        return {}
    marks: dict[int, StageMark] = {}
    said: dict[tuple[str, str], list[str]] = {}
    for decision in decisions:
        if decision.revision == request.revision:
            who = decision.principal.display_name
            if decision.actor_id != decision.principal_id:
                who += f" (by {decision.actor.display_name})"
            said.setdefault((decision.stage_name, decision.outcome), []).append(who)
    position: str | None = None
    for entry in entries[starts[-1] :]:
        record = request_record(entry)
        said_now = record.decision
        if said_now is not None and entry.action == Action.TIME_OUT:
            # The system decided the stage when its SLA ran out: nobody approved or rejected.
            index = index_of.get(said_now.stage)
            if index is not None:
                verdict = "approved" if said_now.stage_outcome == "met" else "rejected"
                marks[index] = StageMark(
                    "met" if said_now.stage_outcome == "met" else "failed",
                    f"{verdict} automatically: overdue",
                )
        elif said_now is not None:
            index = index_of.get(said_now.stage)
            if index is not None and said_now.stage_outcome == "met":
                marks[index] = StageMark(
                    "met", "approved by " + _names(said.get((said_now.stage, "approve"), []))
                )
            elif index is not None and said_now.stage_outcome == "failed":
                marks[index] = StageMark(
                    "failed", "rejected by " + _names(said.get((said_now.stage, "reject"), []))
                )
            elif index is not None and said_now.outcome == Action.REQUEST_CHANGES:
                asked = _names(said.get((said_now.stage, "request_changes"), []))
                marks[index] = StageMark("", f"changes asked by {asked}" if asked else "changes asked")
        route = record.route
        if route is not None:
            for skipped in route.skipped:
                index = index_of.get(skipped.stage)
                if index is not None:
                    marks[index] = StageMark("skipped", skipped.reason)
            for met in route.met:
                index = index_of.get(met)
                if index is not None:
                    marks[index] = StageMark("met", "met by earlier approvals")
            position = route.to
        task = record.task
        if task is not None and task.stage in index_of:
            who = entry.actor.display_name if entry.actor else "Baton"
            marks[index_of[task.stage]] = (
                StageMark("met", f"done by {who}")
                if task.outcome == "completed"
                else StageMark("failed", f"could not be done ({who})")
            )
        if entry.action in {Action.WITHDRAW, Action.CANCEL} and position in index_of:
            verb = "withdrawn" if entry.action == Action.WITHDRAW else "cancelled"
            marks[index_of[position]] = StageMark("", f"{verb} here")
    if request.in_fulfilment or (request.state == State.IN_REVIEW and request.stage_index is not None):
        assert request.stage_index is not None
        stage = policy.stages[request.stage_index]
        if stage.is_task:
            for index in policy.step_of(request.stage_index):
                member = policy.stages[index]
                if index in marks and marks[index].status in {"met", "skipped"}:
                    continue
                waiting = _names(h.holder_label() for h in handoffs if h.is_open and h.stage == member.name)
                marks[index] = StageMark("current", f"waiting for {waiting}" if waiting else "waiting")
            return marks
        approvals = said.get((stage.name, "approve"), [])
        waiting = _names(h.holder_label() for h in handoffs if h.is_open)
        note = f"waiting for {waiting}" if waiting else "waiting"
        if approvals and stage.rule != "any":
            note = f"{len(approvals)} approved; " + note
        marks[request.stage_index] = StageMark("current", note)
        # The payload does not change within a revision, so the stages ahead that its
        # values rule out are already known; they are recorded as skipped when reached.
        for index in range(request.stage_index + 1, len(policy.stages)):
            condition = policy.stages[index].condition
            if (
                index not in marks
                and condition is not None
                and not condition_holds(condition, request.payload)
            ):
                marks[index] = StageMark(
                    "", "will be skipped: " + condition_explain(condition, request.payload)
                )
    return marks


def _step_views(policy: Policy, marks: Mapping[int, StageMark]) -> list[RouteStepView]:
    return [
        RouteStepView(
            index=index,
            name=stage.name,
            status=marks[index].status if index in marks else "",
            note=marks[index].note if index in marks else "",
            approvers=stage.approvers.describe(),
            rule=stage.rule_text(),
            condition=stage.condition.describe() if stage.condition is not None else "",
        )
        for index, stage in enumerate(policy.stages)
    ]


def route_view(
    *, request: ApprovalRequest, entries: list[AuditEntry], decisions: list[Decision], handoffs: list[Handoff]
) -> RouteView | None:
    """The request's route drawn from its policy version, or, for a draft, the route the
    type's current policy would give it now (by the same simulation the admin shows)."""
    current = request.request_type.current_policy
    if request.policy_version is not None:
        version = request.policy_version
        try:
            policy = version.policy
        except PolicyError:
            return None
        marks = route_marks(
            request=request, policy=policy, entries=entries, decisions=decisions, handoffs=handoffs
        )
        newer = current if current is not None and current.number > version.number else None
        return RouteView(
            version=version,
            svg=policy_svg(policy=policy, marks=marks, title=f"Approval route ({version})"),
            steps=_step_views(policy, marks),
            newer=newer,
        )
    if request.state != State.DRAFT or current is None or not current.is_published:
        return None
    policy = current.policy
    route = route_simulate(policy=policy, payload=request.payload or {}, requester=request.requester)
    marks = {}
    problems = []
    for step in route.steps:
        if not step.applies:
            marks[step.index] = StageMark("skipped", step.reason)
        else:
            who = ", ".join(step.approvers)
            marks[step.index] = StageMark("", f"would go to {who}" if who else "")
            if step.problem:
                problems.append(f"Stage {step.stage.name}: {step.problem}.")
    return RouteView(
        version=current,
        svg=policy_svg(policy=policy, marks=marks, title=f"Route if submitted now ({current})"),
        steps=_step_views(policy, marks),
        preview=True,
        problems=problems,
    )
