"""Acting on a request from its page: the lifecycle's decisions and moves (approve, reject,
ask for changes, resubmit, withdraw, cancel…) and a task done or handed back, with the
confirmation step before what cannot be undone. A refused post goes back to the page
(approvals.views.request_refusals)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from approvals import selectors, services
from approvals.actions import TASK_ACTIONS, Action
from approvals.forms import RequestActionForm, TaskForm
from approvals.models import ApprovalRequest
from approvals.views.common import me, problem_message
from approvals.views.request_refusals import ACTING, ACTION, HANDOFF, TASK, refuse_on_request_page
from approvals.views.requests import detail_context
from workflows import errors


def _task_action(request: HttpRequest, visible: ApprovalRequest) -> HttpResponse:
    """A task done (with its outputs) or handed back, from the task's form on the page."""
    pk = visible.pk
    policy = visible.policy
    index = policy.stage_index(request.POST.get("stage", "")) if policy is not None else None
    stage = policy.stages[index] if policy is not None and index is not None else None
    if stage is None or not stage.is_task:
        problem = "There is no such task on this request. Nothing was done."
        return refuse_on_request_page(
            request,
            pk,
            form_name=HANDOFF,
            problem=problem,
            status=400,
            context=lambda: detail_context(request, pk, problem=problem),
        )
    form = TaskForm(request.POST, outputs_schema=stage.outputs or {})
    if not form.is_valid():
        return refuse_on_request_page(
            request,
            pk,
            form_name=TASK,
            form=form,
            status=400,
            context=lambda: detail_context(request, pk, task_form=form),
        )
    action = Action(form.cleaned_data["action"])
    if action.is_irreversible and not form.cleaned_data["confirmed"] and _offered(request, visible, action):
        return _confirm(request, visible, action)
    data: dict[str, Any] = {"stage": stage.name}
    if action == Action.COMPLETE:
        data["outputs"] = form.cleaned_payload
    try:
        result = services.request_act(
            request_id=pk,
            action=action,
            actor=me(request),
            comment=form.cleaned_data["comment"],
            expected_version=form.cleaned_data["version"],
            idempotency_key=form.cleaned_data["idempotency_key"] or None,
            data=data,
        )
    except errors.NotFound:
        raise Http404("No such request.") from None
    except errors.WorkflowError as exc:
        if exc.field_errors:
            form.add_service_error(exc)
        problem = "" if exc.field_errors else _problem(request, pk, exc, action.label.lower())
        return refuse_on_request_page(
            request,
            pk,
            form_name=TASK,
            form=form,
            problem=problem,
            status=exc.http_status,
            context=lambda: detail_context(request, pk, task_form=form, problem=problem),
        )
    done = "done" if action == Action.COMPLETE else "handed back"
    messages.success(
        request, f"Task {stage.name} {done}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=pk)


def _problem(request: HttpRequest, pk: int, exc: errors.WorkflowError, what: str) -> str:
    """The refusal in words, against the request as it is now."""
    now = selectors.request_visible(request_id=pk, user=me(request))
    if now is None:
        raise Http404("No such request.")
    return problem_message(exc, now, what)


def _offered(request: HttpRequest, req: ApprovalRequest, action: str) -> bool:
    # Only what the person may do (themselves, or for whoever they stand in for) is worth
    # confirming; anything else is refused at once.
    return bool(request.POST.get("on_behalf_of")) or selectors.may_take(
        request=req, user=me(request), action=action
    )


def _confirm(request: HttpRequest, req: ApprovalRequest, action: Action) -> HttpResponse:
    """The step before an action that cannot be undone: what it will do, the reason (where
    one is needed) to check, and a button that sends the same post again, confirmed.
    Nothing has changed yet, so reloading this page is harmless."""
    carried = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in {"csrfmiddlewaretoken", "comment", "confirmed"}
        for value in values
    ]
    context = {
        "req": req,
        "action": action,
        "comment": request.POST.get("comment", ""),
        "carried": carried,
        "consequence": CONSEQUENCES.get(action, ""),
    }
    return render(request, "approvals/confirm.html", context)


CONSEQUENCES = {
    Action.REJECT: "The request is rejected: it ends here, and its requester is told.",
    Action.WITHDRAW: "The request is withdrawn: every approver's item closes and it cannot be reopened.",
    Action.CANCEL: "The request is cancelled: every open item closes and its requester is told why.",
    Action.HAND_BACK: "The task is handed back as not possible: the request goes where its policy says.",
}


def _posted_context(request: HttpRequest, pk: int, form: RequestActionForm) -> dict[str, Any]:
    """The page again after a refused post; a form posted for someone under a delegation
    comes back in its own place (approvals/_acting_for.html), the page's own form fresh."""
    if form.data.get("on_behalf_of"):
        context = detail_context(request, pk)
        context["acting_form"] = form
        return context
    return detail_context(request, pk, form=form)


@login_required
@require_POST
def request_action(request: HttpRequest, pk: int) -> HttpResponse:
    # Visibility first: someone who may not see the request learns nothing about it.
    visible = selectors.request_visible(request_id=pk, user=me(request))
    if visible is None:
        raise Http404("No such request.")
    if Action.named(request.POST.get("action", "")) in TASK_ACTIONS:
        return _task_action(request, visible)
    # Only a resubmission reads payload inputs; any other action leaves the payload alone.
    resubmit = request.POST.get("action") == Action.RESUBMIT
    form = RequestActionForm(
        request.POST,
        payload_schema=(visible.request_type.payload_schema or {}) if resubmit else None,
        payload=visible.payload,
    )
    form_name = ACTING if form.data.get("on_behalf_of") else ACTION
    if not form.is_valid():
        return refuse_on_request_page(
            request,
            pk,
            form_name=form_name,
            form=form,
            status=400,
            context=lambda: _posted_context(request, pk, form),
        )
    action = form.cleaned_data["action"]
    on_behalf_of = form.cleaned_data["on_behalf_of"]
    if (
        Action(action).is_irreversible
        and not form.cleaned_data["confirmed"]
        and _offered(request, visible, action)
    ):
        return _confirm(request, visible, Action(action))
    data: dict[str, Any] = {}
    if action == Action.RESUBMIT:
        for name in ("title", "description"):
            if name in request.POST:
                data[name] = form.cleaned_data[name]
        if form.carries_payload:
            data["payload"] = form.cleaned_payload
    try:
        result = services.request_act(
            request_id=pk,
            action=action,
            actor=me(request),
            comment=form.cleaned_data["comment"],
            expected_version=form.cleaned_data["version"],
            idempotency_key=form.cleaned_data["idempotency_key"] or None,
            data=data,
            on_behalf_of=on_behalf_of,
        )
    except errors.NotFound:
        raise Http404("No such request.") from None
    except errors.WorkflowError as exc:
        if exc.field_errors:
            form.add_service_error(exc)
        problem = "" if exc.field_errors else _problem(request, pk, exc, Action(action).label.lower())
        return refuse_on_request_page(
            request,
            pk,
            form_name=form_name,
            form=form,
            problem=problem,
            status=exc.http_status,
            context=lambda: {**_posted_context(request, pk, form), "problem": problem or None},
        )
    label = Action(action).label.lower()
    if on_behalf_of is not None and on_behalf_of.pk != me(request).pk:
        label = f"{label} for {on_behalf_of.display_name}"
    messages.success(
        request, f"Done: {label}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=pk)
