"""Server-rendered pages. Thin: parse input, call a service or selector, render.

Domain errors are shown on the form with the status they mean (400, 403, 409);
a request the user may not see answers 404, so its existence is not revealed.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.models import User
from approvals import policies, selectors, services
from approvals.actions import TASK_ACTIONS, Action
from approvals.forms import RequestActionForm, RequestCreateForm, RequestFilterForm, TaskForm
from approvals.models import ApprovalRequest, RequestType
from workflows import errors
from workflows.services import handoff_claim, handoff_unclaim

PAGE_SIZE = 50


def _me(request: HttpRequest) -> User:
    """The logged-in user (every view here requires login)."""
    return cast(User, request.user)


def _page_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    context = {
        "inbox": selectors.inbox_for_user(user=user, limit=20),
        "mine": selectors.request_rows(selectors.requests_of_requester(user=user, limit=20)),
    }
    return render(request, "approvals/home.html", context)


@login_required
@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    rows = selectors.inbox_for_user(
        user=_me(request), after_id=_page_param(request, "after"), limit=PAGE_SIZE
    )
    next_after = rows[-1].handoff.pk if len(rows) == PAGE_SIZE else None
    return render(request, "approvals/inbox.html", {"rows": rows, "next_after": next_after})


@login_required
@require_safe
def my_requests(request: HttpRequest) -> HttpResponse:
    rows = selectors.requests_of_requester(
        user=_me(request), before_id=_page_param(request, "before"), limit=PAGE_SIZE
    )
    next_before = rows[-1].pk if len(rows) == PAGE_SIZE else None
    return render(
        request,
        "approvals/my_requests.html",
        {"rows": selectors.request_rows(rows), "next_before": next_before},
    )


@login_required
@require_safe
def all_requests(request: HttpRequest) -> HttpResponse:
    if not policies.may_view_all(_me(request)):
        raise PermissionDenied("Only managers and auditors can see every request.")
    form = RequestFilterForm(request.GET)
    if not form.is_valid():
        # A bad filter is the caller's mistake: say which and why, list nothing.
        return render(
            request,
            "approvals/all_requests.html",
            {"form": form, "rows": [], "next_before": None},
            status=400,
        )
    state = form.cleaned_data["state"] or None
    rows = selectors.requests_all(state=state, before_id=form.cleaned_data["before"], limit=PAGE_SIZE)
    next_before = rows[-1].pk if len(rows) == PAGE_SIZE else None
    return render(
        request,
        "approvals/all_requests.html",
        {
            "form": form,
            "rows": selectors.request_rows(rows),
            "next_before": next_before,
            "state": state or "",
        },
    )


@login_required
@require_safe
def request_new(request: HttpRequest) -> HttpResponse:
    """The types the person may submit, each with its description: pick one to fill in."""
    types = selectors.request_types_for_submitter(user=_me(request))
    status = 200 if types else 403
    return render(request, "approvals/request_types.html", {"types": types}, status=status)


def _new_context(request_type: RequestType, form: RequestCreateForm) -> dict[str, Any]:
    return {"request_type": request_type, "form": form}


@login_required
@require_http_methods(["GET", "POST"])
def request_new_of_type(request: HttpRequest, slug: str) -> HttpResponse:
    """The form of one type, built from its payload schema; posting it creates the request."""
    request_type = selectors.request_type_for_submitter(slug=slug)
    if request_type is None:
        raise Http404("No such request type.")
    if not policies.may_submit_type(_me(request), request_type):
        raise PermissionDenied(
            f"You may not submit {request_type} requests. Ask an administrator for access."
        )
    form = RequestCreateForm(request.POST or None, payload_schema=request_type.payload_schema or {})
    template = "approvals/request_new.html"
    if request.method != "POST":
        return render(request, template, _new_context(request_type, form))
    if not form.is_valid():
        return render(request, template, _new_context(request_type, form), status=400)
    try:
        created = services.request_create(
            requester=_me(request),
            request_type=request_type,
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
            payload=form.cleaned_payload,
            submit=not form.cleaned_data["save_as_draft"],
        )
    except errors.WorkflowError as exc:
        form.add_service_error(exc)
        return render(request, template, _new_context(request_type, form), status=exc.http_status)
    messages.success(
        request,
        f"{created.reference} {'saved as a draft' if created.state == 'draft' else 'submitted for review'}.",
    )
    return redirect("approvals:request_detail", pk=created.pk)


def _detail_context(
    request: HttpRequest,
    pk: int,
    form: RequestActionForm | None = None,
    problem: str | None = None,
    task_form: TaskForm | None = None,
) -> dict[str, Any]:
    page = selectors.request_page(request_id=pk, user=_me(request))
    if page is None:
        raise Http404("No such request.")
    req = page.request
    if form is None:
        # The resubmit form carries the payload inputs, prefilled with what was sent last.
        resubmit = Action.RESUBMIT in page.actions
        form = RequestActionForm(
            initial={"version": req.version},
            payload_schema=(req.request_type.payload_schema or {}) if resubmit else None,
            payload=req.payload,
        )
    # One form per task the viewer may do now; a posted one comes back with its errors.
    tasks = []
    for task in page.work.tasks if page.work else []:
        posted = task_form is not None and task_form.data.get("stage") == task.stage.name
        tasks.append(
            (
                task,
                task_form
                if posted
                else TaskForm(
                    initial={"version": req.version, "stage": task.stage.name},
                    outputs_schema=task.stage.outputs or {},
                ),
            )
        )
    return {
        "page": page,
        "req": req,
        "actions": [
            (o.action.value, o.action.label)
            for o in page.options
            if o.allowed and o.action not in TASK_ACTIONS
        ],
        "tasks": tasks,
        "form": form,
        "idempotency_key": uuid.uuid4().hex,
        "problem": problem,
    }


def _problem_message(exc: errors.WorkflowError, req: ApprovalRequest, what: str) -> str:
    """Say plainly what went wrong; `req` is the request as it is now (reloaded)."""
    now = req.get_state_display()
    if isinstance(exc, errors.StaleVersion):
        return (
            f"{req.reference} changed since you loaded it (someone else acted; it is now {now}). "
            "Nothing was done: check it below and try again."
        )
    if isinstance(exc, errors.TransitionNotAllowed):
        return f"You cannot {what} {req.reference}: it is {now} now. Nothing was done."
    return exc.detail


@login_required
@require_safe
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "approvals/request_detail.html", _detail_context(request, pk))


def _task_action(request: HttpRequest, visible: ApprovalRequest) -> HttpResponse:
    """A task done (with its outputs) or handed back, from the task's form on the page."""
    pk = visible.pk
    policy = visible.policy
    index = policy.stage_index(request.POST.get("stage", "")) if policy is not None else None
    stage = policy.stages[index] if policy is not None and index is not None else None
    if stage is None or not stage.is_task:
        context = _detail_context(
            request, pk, problem="There is no such task on this request. Nothing was done."
        )
        return render(request, "approvals/request_detail.html", context, status=400)
    form = TaskForm(request.POST, outputs_schema=stage.outputs or {})
    if not form.is_valid():
        context = _detail_context(request, pk, task_form=form)
        return render(request, "approvals/request_detail.html", context, status=400)
    action = Action(form.cleaned_data["action"])
    data: dict[str, Any] = {"stage": stage.name}
    if action == Action.COMPLETE:
        data["outputs"] = form.cleaned_payload
    try:
        result = services.request_act(
            request_id=pk,
            action=action,
            actor=_me(request),
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
        context = _detail_context(request, pk, task_form=form)
        if not exc.field_errors:
            context["problem"] = _problem_message(exc, context["req"], action.label.lower())
        return render(request, "approvals/request_detail.html", context, status=exc.http_status)
    done = "done" if action == Action.COMPLETE else "handed back"
    messages.success(
        request, f"Task {stage.name} {done}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=pk)


@login_required
@require_POST
def request_action(request: HttpRequest, pk: int) -> HttpResponse:
    # Visibility first: someone who may not see the request learns nothing about it.
    visible = selectors.request_visible(request_id=pk, user=_me(request))
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
    if not form.is_valid():
        return render(
            request, "approvals/request_detail.html", _detail_context(request, pk, form), status=400
        )
    action = form.cleaned_data["action"]
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
            actor=_me(request),
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
        context = _detail_context(request, pk, form)
        if not exc.field_errors:
            context["problem"] = _problem_message(exc, context["req"], Action(action).label.lower())
        return render(request, "approvals/request_detail.html", context, status=exc.http_status)
    label = Action(action).label.lower()
    messages.success(
        request, f"Done: {label}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=pk)


def _handoff_back(request: HttpRequest) -> HttpResponse:
    """Back where the person came from, if that is a page of this site; else their inbox."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("approvals:inbox")


def _handoff_change(request: HttpRequest, pk: int, *, claim: bool) -> HttpResponse:
    """Claim or release a handoff; a refusal is shown on the request's page with its status."""
    found = selectors.handoff_request(handoff_id=pk)
    if found is None or not policies.may_view(found[1], _me(request)):
        raise Http404("No such item.")
    req = found[1]
    try:
        if claim:
            handoff_claim(handoff_id=pk, actor=_me(request))
        else:
            handoff_unclaim(handoff_id=pk, actor=_me(request))
    except errors.NotFound:
        raise Http404("No such item.") from None
    except errors.WorkflowError as exc:
        context = _detail_context(request, req.pk)
        context["problem"] = f"{'Claim' if claim else 'Release'} refused: {exc.detail} Nothing was changed."
        return render(request, "approvals/request_detail.html", context, status=exc.http_status)
    if claim:
        messages.success(request, f"Claimed {req.reference}: it is yours now.")
    else:
        messages.success(request, f"Released {req.reference}: it is back in its group's queue.")
    return _handoff_back(request)


@login_required
@require_POST
def handoff_claim_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _handoff_change(request, pk, claim=True)


@login_required
@require_POST
def handoff_unclaim_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _handoff_change(request, pk, claim=False)
