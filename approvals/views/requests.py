"""A request's own pages: picking a type, the new-request form, the request page and the
actions posted from it (decisions, resubmission, tasks)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from approvals import discussion, policies, selectors, services
from approvals.actions import OWN_FORM_ACTIONS, TASK_ACTIONS, Action
from approvals.discussion import FILES_MAX
from approvals.forms import CommentForm, DraftForm, RequestActionForm, RequestCreateForm, TaskForm
from approvals.models import ApprovalRequest, RequestType, State
from approvals.models.discussion import attachment_storage
from approvals.selectors.delegations import request_delegations
from approvals.selectors.team import reassignable_handoffs
from approvals.views.common import me, problem_message
from workflows import errors


@login_required
@require_safe
def request_new(request: HttpRequest) -> HttpResponse:
    """The types the person may submit, each with its description: pick one to fill in."""
    types = selectors.request_types_for_submitter(user=me(request))
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
    if not policies.may_submit_type(me(request), request_type):
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
            requester=me(request),
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


def detail_context(
    request: HttpRequest,
    pk: int,
    *,
    form: RequestActionForm | None = None,
    problem: str | None = None,
    task_form: TaskForm | None = None,
    comment_form: CommentForm | None = None,
) -> dict[str, Any]:
    page = selectors.request_page(request_id=pk, user=me(request))
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
            if o.allowed and o.action not in OWN_FORM_ACTIONS
        ],
        "may_edit": Action.EDIT in page.actions,
        "attachment_rules": ATTACHMENT_RULES,
        "comment_form": comment_form or CommentForm(),
        "tasks": tasks,
        "form": form,
        "idempotency_key": uuid.uuid4().hex,
        "problem": problem,
        # Whom the viewer acts for here under a delegation, and what they may hand on.
        "acting_for": request_delegations(request=req, user=me(request), open_handoffs=page.holders),
        "acting_key": uuid.uuid4().hex,
        "reassignable": reassignable_handoffs(handoffs=page.holders, user=me(request)),
    }


@login_required
@require_safe
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "approvals/request_detail.html", detail_context(request, pk))


def _task_action(request: HttpRequest, visible: ApprovalRequest) -> HttpResponse:
    """A task done (with its outputs) or handed back, from the task's form on the page."""
    pk = visible.pk
    policy = visible.policy
    index = policy.stage_index(request.POST.get("stage", "")) if policy is not None else None
    stage = policy.stages[index] if policy is not None and index is not None else None
    if stage is None or not stage.is_task:
        context = detail_context(
            request, pk, problem="There is no such task on this request. Nothing was done."
        )
        return render(request, "approvals/request_detail.html", context, status=400)
    form = TaskForm(request.POST, outputs_schema=stage.outputs or {})
    if not form.is_valid():
        context = detail_context(request, pk, task_form=form)
        return render(request, "approvals/request_detail.html", context, status=400)
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
        context = detail_context(request, pk, task_form=form)
        if not exc.field_errors:
            context["problem"] = problem_message(exc, context["req"], action.label.lower())
        return render(request, "approvals/request_detail.html", context, status=exc.http_status)
    done = "done" if action == Action.COMPLETE else "handed back"
    messages.success(
        request, f"Task {stage.name} {done}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=pk)


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


class _AttachmentRules:
    """What the file input says it accepts (read from settings when shown)."""

    count = FILES_MAX

    @property
    def max_bytes(self) -> int:
        return int(settings.ATTACHMENT_MAX_BYTES)

    @property
    def kinds(self) -> str:
        return ", ".join(sorted(k.lstrip(".") for k in settings.ATTACHMENT_TYPES))


ATTACHMENT_RULES = _AttachmentRules()


# What each irreversible action does, said on its confirmation step.
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
    if not form.is_valid():
        return render(
            request, "approvals/request_detail.html", _posted_context(request, pk, form), status=400
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
        context = _posted_context(request, pk, form)
        if not exc.field_errors:
            context["problem"] = problem_message(exc, context["req"], Action(action).label.lower())
        return render(request, "approvals/request_detail.html", context, status=exc.http_status)
    label = Action(action).label.lower()
    if on_behalf_of is not None and on_behalf_of.pk != me(request).pk:
        label = f"{label} for {on_behalf_of.display_name}"
    messages.success(
        request, f"Done: {label}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
def request_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """A draft's form, filled with what it says; saving keeps it a draft, or submits it."""
    visible = selectors.request_visible(request_id=pk, user=me(request))
    if visible is None:
        raise Http404("No such request.")
    if visible.state != State.DRAFT or visible.requester_id != me(request).pk:
        raise PermissionDenied(f"{visible.reference} is not a draft of yours: it cannot be edited.")
    schema = visible.request_type.payload_schema or {}
    form = DraftForm(
        request.POST or None,
        payload_schema=schema,
        payload=visible.payload,
        initial={"title": visible.title, "description": visible.description, "version": visible.version},
    )
    context = {"req": visible, "request_type": visible.request_type, "form": form}
    if request.method != "POST":
        return render(request, "approvals/request_edit.html", context)
    if not form.is_valid():
        return render(request, "approvals/request_edit.html", context, status=400)
    submit = not form.cleaned_data["save_as_draft"]
    content = {
        "title": form.cleaned_data["title"],
        "description": form.cleaned_data["description"],
        "payload": form.cleaned_payload,
    }
    try:
        result = services.request_draft_save(
            request_id=pk,
            actor=me(request),
            content=content,
            expected_version=form.cleaned_data["version"],
            submit=submit,
        )
    except errors.NotFound:
        raise Http404("No such request.") from None
    except errors.WorkflowError as exc:
        form.add_service_error(exc)
        return render(request, "approvals/request_edit.html", context, status=exc.http_status)
    done = "submitted for review" if submit else "saved"
    messages.success(request, f"{result.reference} {done}.")
    return redirect("approvals:request_detail", pk=pk)


@login_required
@require_POST
def request_comment(request: HttpRequest, pk: int) -> HttpResponse:
    """A post on the request's thread (words, files or both)."""
    visible = selectors.request_visible(request_id=pk, user=me(request))
    if visible is None:
        raise Http404("No such request.")
    form = CommentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            discussion.request_comment(
                request_id=pk,
                author=me(request),
                body=form.cleaned_data["body"],
                files=form.cleaned_data["attachments"],
            )
        except errors.NotFound:
            raise Http404("No such request.") from None
        except errors.WorkflowError as exc:
            form.add_service_error(exc)
            context = detail_context(request, pk, comment_form=form)
            return render(request, "approvals/request_detail.html", context, status=exc.http_status)
        messages.success(request, "Posted on the thread.")
        return redirect(f"{reverse('approvals:request_detail', args=[pk])}#thread")
    context = detail_context(request, pk, comment_form=form)
    return render(request, "approvals/request_detail.html", context, status=400)


@login_required
@require_safe
def attachment_download(request: HttpRequest, pk: int) -> FileResponse:
    """A file of a request, to people who may see the request. Always a download (never
    shown inline), so a file cannot run as a page of this site."""
    attachment = selectors.attachment_visible(attachment_id=pk, user=me(request))
    if attachment is None:
        raise Http404("No such file.")
    try:
        # The storage as configured now (the field's own is fixed when the model loads).
        handle = attachment_storage().open(str(attachment.file.name), "rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    response = FileResponse(handle, as_attachment=True, filename=attachment.name)
    response["Content-Type"] = attachment.content_type
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    return response
