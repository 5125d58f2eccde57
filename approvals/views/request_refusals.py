"""The request page's refused posts (approvals.views.refusals for the request page): which
form each was, where on the page it sits, and the form rebuilt from it for the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from approvals.forms import CommentForm, RequestActionForm, TaskForm
from approvals.manage_forms import ReassignForm
from approvals.models import ApprovalRequest
from approvals.views.refusals import Refusal, refuse

TEMPLATE = "approvals/request_detail.html"
ACTION, ACTING, TASK, COMMENT, REASSIGN, HANDOFF = (
    "action",
    "acting",
    "task",
    "comment",
    "reassign",
    "handoff",
)


def _anchor(form_name: str, *, problem: str, stage: str = "") -> str:
    """Where the browser lands: the problem said at the top, else the refused form."""
    if problem:
        return "problem"
    return {
        ACTION: "act",
        ACTING: "acting-for",
        TASK: f"task-{stage}",
        COMMENT: "thread",
        REASSIGN: "reassign",
    }.get(form_name, "")


def refuse_on_request_page(
    request: HttpRequest,
    pk: int,
    *,
    form_name: str,
    form: Any = None,
    problem: str = "",
    status: int,
    context: Callable[[], dict[str, Any]],
) -> HttpResponse:
    """A post refused on request `pk`'s page: back to the page (303) with the refusal
    kept, or, for htmx, the page's content with it. `context()` builds the page's context
    with the refused form in place (called only for htmx)."""
    stage = request.POST.get("stage", "") if form_name == TASK else ""
    return refuse(
        request,
        back=reverse("approvals:request_detail", args=[pk]),
        form_name=form_name,
        form=form,
        problem=problem,
        status=status,
        page=lambda: (TEMPLATE, context()),
        anchor=_anchor(form_name, problem=problem, stage=stage),
    )


def refused_forms(refusal: Refusal, *, req: ApprovalRequest, resubmit_offered: bool) -> dict[str, Any]:
    """The refused form rebuilt for request `req`'s page, under the name the page's
    context gives it (form, acting_form, task_form, comment_form, reassign_form)."""
    if refusal.form in {ACTION, ACTING}:
        schema = (req.request_type.payload_schema or {}) if resubmit_offered else None
        bound = refusal.bind(lambda data: RequestActionForm(data, payload_schema=schema, payload=req.payload))
        return {"acting_form" if refusal.form == ACTING else "form": bound}
    if refusal.form == TASK:
        stage_name = (refusal.data.get("stage") or [""])[0]
        policy = req.policy
        index = policy.stage_index(stage_name) if policy is not None else None
        if policy is None or index is None:
            return {}
        outputs = policy.stages[index].outputs or {}
        return {"task_form": refusal.bind(lambda data: TaskForm(data, outputs_schema=outputs))}
    if refusal.form == COMMENT:
        return {"comment_form": refusal.bind(CommentForm)}
    if refusal.form == REASSIGN:
        return {"reassign_form": refusal.bind(ReassignForm)}
    return {}
