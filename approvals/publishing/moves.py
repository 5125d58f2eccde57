"""Moving in-flight requests to another published version: the dry run, then the moves,
each an audited 'move_policy' transition."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q

from accounts.models import User
from approvals.actions import Action
from approvals.lifecycle import LIFECYCLE, move_plan
from approvals.models import ApprovalRequest, PolicyVersion, RequestType, State
from workflows import errors
from workflows.models import Handoff
from workflows.services import SYSTEM, SystemActor, transition

# Requests a move can take along: in review, waiting for changes, or being fulfilled.
IN_FLIGHT = Q(state__in=(State.IN_REVIEW, State.CHANGES_REQUESTED)) | Q(
    state=State.APPROVED, stage_index__isnull=False
)


@dataclass
class MoveRow:
    """What moving one request would do (the dry run), or did."""

    request: ApprovalRequest
    from_version: int | None
    from_stage: str
    to_stage: str
    closing: list[str] = field(default_factory=list)
    opening: list[str] = field(default_factory=list)
    problem: str = ""
    moved: bool = False

    def describe(self) -> str:
        head = f"{self.request.reference} ({self.request.get_state_display()}): v{self.from_version} {self.from_stage} → {self.to_stage}"
        if self.problem:
            return f"{head}: cannot move: {self.problem}"
        parts = [head]
        if self.closing:
            parts.append("closes " + ", ".join(self.closing))
        if self.opening:
            parts.append("opens " + ", ".join(self.opening))
        return "; ".join(parts)


def _holder(handoff: Handoff) -> str:
    return handoff.holder_label()


def _requests_to_move(request_type: RequestType, to_version: PolicyVersion) -> Iterable[ApprovalRequest]:
    return (
        ApprovalRequest.objects.filter(IN_FLIGHT, request_type=request_type)
        .exclude(policy_version=to_version)
        .select_related("requester", "policy_version", "request_type")
        .order_by("pk")
    )


def _stage_label(request: ApprovalRequest) -> str:
    stage = request.current_stage
    if request.state == State.CHANGES_REQUESTED:
        return "waiting for changes"
    return f"stage '{stage.name}'" if stage is not None else "no stage"


def policy_move_plan(*, request_type: RequestType, to_version: PolicyVersion) -> list[MoveRow]:
    """The dry run: for each in-flight request of the type, where it would land under
    `to_version` and whose handoffs would close and open. Reads only."""
    if not to_version.is_published or to_version.request_type_id != request_type.pk:
        raise errors.InvalidInput(
            f"{to_version} is not a published version of {request_type}.",
            field_errors={"version": ["Choose a published version of this type."]},
        )
    rows = []
    for request in _requests_to_move(request_type, to_version):
        row = MoveRow(
            request=request,
            from_version=request.policy_version.number if request.policy_version else None,
            from_stage=_stage_label(request),
            to_stage="",
        )
        open_handoffs = list(
            Handoff.objects.for_instance(request).open().select_related("assignee", "candidate_group")
        )
        # The same facts the move itself reads under the lock, so the dry run says what it will do.
        facts = LIFECYCLE.facts(request, open_handoffs=open_handoffs)
        try:
            plan = move_plan(
                request=request,
                version=to_version,
                open_handoffs=open_handoffs,
                decisions=facts.decisions,
                completed=facts.tasks_completed(),
            )
        except errors.WorkflowError as exc:
            row.problem = exc.detail
            rows.append(row)
            continue
        change = plan.change
        if change.target == State.IN_REVIEW and change.stage_index is not None:
            row.to_stage = f"stage '{to_version.policy.stages[change.stage_index].name}'"
        elif change.target == State.CHANGES_REQUESTED:
            row.to_stage = "waiting for changes"
        else:
            row.to_stage = State(change.target).label.lower()
        row.closing = [_holder(h) for h in plan.close]
        row.opening = [
            f"{spec.user.display_name if spec.user else ''}{' / ' if spec.user and spec.group else ''}"
            f"{'group ' + spec.group.name if spec.group else ''}"
            for spec in plan.open
        ]
        rows.append(row)
    return rows


def policy_move_apply(
    *, request_type: RequestType, to_version: PolicyVersion, actor: User | SystemActor = SYSTEM
) -> list[MoveRow]:
    """Move every in-flight request of the type to `to_version`, each in its own audited
    transition ('move_policy'); returns what happened to each."""
    rows = policy_move_plan(request_type=request_type, to_version=to_version)
    for row in rows:
        if row.problem:
            continue
        try:
            transition(
                model=ApprovalRequest,
                instance_id=row.request.pk,
                name=Action.MOVE_POLICY,
                actor=actor,
                comment=f"Moved to {to_version}.",
                data={"version": to_version.pk},
            )
        except errors.WorkflowError as exc:
            row.problem = exc.detail
        else:
            row.moved = True
    return rows
