"""The work on a request as its page shows it: the tasks the viewer may do now, what the
request's tasks delivered, and the notes they left for whoever holds it next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from approvals.lifecycle import tasks_held
from approvals.lifecycle.base import RequestFacts
from approvals.models import ApprovalRequest, Decision, TaskCompletion
from approvals.routing import Stage
from approvals.selectors.values import PayloadItem, payload_items
from workflows.models import Handoff
from workflows.permissions import holds_handoff

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class TaskView:
    """A task the viewer may do now: its stage (description, outputs schema) and handoff."""

    stage: Stage
    handoff: Handoff


@dataclass(frozen=True)
class Delivered:
    """One task's completion that stands: what it handed on, by whom, when, its note."""

    completion: TaskCompletion
    items: list[PayloadItem]
    description: str = ""


@dataclass
class WorkView:
    tasks: list[TaskView] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    # Notes of this revision's completions and hand-backs, newest first.
    notes: list[TaskCompletion] = field(default_factory=list)
    # Whether the viewer holds the request now (the notes are for them).
    holding: bool = False


def work_view(
    *, request: ApprovalRequest, user: User, open_handoffs: list[Handoff], decisions: list[Decision]
) -> WorkView:
    """The work on `request` for `user` (one query: the request's task completions)."""
    policy = request.policy
    if policy is None or not policy.has_tasks:
        return WorkView()
    completions = list(
        TaskCompletion.objects.filter(request=request).select_related("principal", "actor").order_by("id")
    )
    current = [c for c in completions if c.revision == request.revision]
    facts = RequestFacts(
        open_handoffs=open_handoffs, request=request, loaded=decisions, loaded_completions=current
    )
    standing = facts.tasks_completed()
    latest: dict[str, TaskCompletion] = {}
    for completion in current:
        if completion.outcome == TaskCompletion.Outcome.COMPLETED and completion.stage_name in standing:
            latest[completion.stage_name] = completion
    delivered = []
    for stage in policy.stages:
        done = latest.get(stage.name)
        if done is not None:
            items = payload_items(stage.outputs or {}, done.outputs or {})
            delivered.append(Delivered(completion=done, items=items, description=stage.description))
    tasks = [
        TaskView(stage=stage, handoff=handoff)
        for stage, handoff in tasks_held(request=request, user=user, facts=facts)
    ]
    holding = any(holds_handoff(user=user, handoff=h) for h in open_handoffs)
    return WorkView(
        tasks=tasks,
        delivered=delivered,
        notes=[c for c in reversed(current) if c.note],
        holding=holding,
    )
