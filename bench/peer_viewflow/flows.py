"""Baton's one-stage approval as a Viewflow flow, and the three steps people take in it.

    start ──► approve (a human task any member of the approvers may claim) ──► end

The steps are what Viewflow's own views do on POST, without HTTP, templates or forms:

  approval_start     the start view (`flow.utils.wrap_start_view` + `CreateProcessView`):
                     create the start activation, check `can_execute`, and in one
                     transaction `start` it with the requester and `execute` it (which
                     saves the process, locks it, completes the start task and creates
                     the approve task). The form's fields are set on the process directly
                     instead of through a ModelForm (which would save the process once more).
  approval_claim     the assign view (`wrap_task_view` + `AssignTaskView`): under the flow
                     lock, load the task (here: the process's open approve task, where the
                     view has its primary key from the URL), check it belongs to this flow,
                     check `can_assign` (the approve permission, through the user's groups)
                     and `assign` it to the approver.
  approval_complete  the task view (`wrap_view` + `UpdateProcessView`): under the flow lock,
                     load the task, check `can_execute` (its owner), `start` it, save the
                     process with `approved` set (the form's save) and `execute` it, which
                     completes the task, creates the end task and finishes the process.

The flow locks the process row (`select_for_update_lock`, Viewflow's choice for PostgreSQL),
as Baton locks its request row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from viewflow import this
from viewflow.workflow import STATUS, flow, lock
from viewflow.workflow.exceptions import FlowRuntimeError
from viewflow.workflow.flow.views import CreateProcessView, UpdateProcessView

from bench.peer_viewflow.models import ApprovalProcess

SUBMIT_PERMISSION = "peer_viewflow.submit_approvalprocess"
APPROVE_PERMISSION = "peer_viewflow.approve_approvalprocess"


class ApprovalFlow(flow.Flow):
    """Approval request

    A requester submits a request with a title and a payload; one member of the approvers
    claims the approve task and completes it; then the process ends.
    """

    process_class = ApprovalProcess
    lock_impl = lock.select_for_update_lock

    start = (
        flow.Start(CreateProcessView.as_view(fields=["title", "payload"]))
        .Permission(SUBMIT_PERMISSION)
        .Next(this.approve)
    )
    approve = (
        flow.View(UpdateProcessView.as_view(fields=["approved"]))
        .Permission(APPROVE_PERMISSION)
        .Next(this.end)
    )
    end = flow.End()


@dataclass(frozen=True)
class _Request:
    """What an activation reads from the HTTP request: who makes it."""

    user: Any


def _task_of_this_flow(task: Any) -> None:
    # The views answer 404 for a task of another flow; Viewflow checks it on every POST.
    if task.process.flow_class != ApprovalFlow:
        raise FlowRuntimeError(f"task {task.pk} is not a task of {ApprovalFlow.__name__}")


def approval_start(*, requester: Any, title: str, payload: dict[str, Any]) -> ApprovalProcess:
    """Start a process as the requester; returns it with the approve task created."""
    node = ApprovalFlow.start
    activation = node.activation_class.create(node, None, None)
    if not node.can_execute(requester, activation.task):
        raise PermissionDenied(f"{requester} may not start {ApprovalFlow.process_title}")
    with transaction.atomic():
        activation.start(_Request(requester))
        process = activation.process
        process.title = title
        process.payload = payload
        activation.execute()
    return process


def approval_claim(*, process_id: int, user: Any) -> int:
    """Assign the process's open approve task to `user`; returns the task's id."""
    node = ApprovalFlow.approve
    with ApprovalFlow.lock(process_id), transaction.atomic():
        task = ApprovalFlow.task_class._default_manager.get(
            process_id=process_id, flow_task=node, status=STATUS.NEW
        )
        _task_of_this_flow(task)
        activation = node.activation_class(task)
        if not node.can_assign(user, task):
            raise PermissionDenied(f"{user} may not claim task {task.pk}")
        activation.assign(user)
    return int(task.pk)


def approval_complete(*, process_id: int, task_id: int, user: Any) -> None:
    """Approve: complete the claimed approve task as its owner, which ends the process."""
    node = ApprovalFlow.approve
    with ApprovalFlow.lock(process_id), transaction.atomic():
        task = ApprovalFlow.task_class._default_manager.get(pk=task_id)
        _task_of_this_flow(task)
        activation = node.activation_class(task)
        if not node.can_execute(user, task):
            raise PermissionDenied(f"{user} may not execute task {task.pk}")
        activation.start(_Request(user))
        process = activation.process
        process.approved = True
        process.save()
        activation.execute()
