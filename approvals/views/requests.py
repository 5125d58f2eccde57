"""A request's own pages: picking a type, the new-request form, the request page and the
actions posted from it (decisions, resubmission, tasks)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from approvals import discussion, policies, selectors, services
from approvals.actions import OWN_FORM_ACTIONS, Action
from approvals.discussion import FILES_MAX
from approvals.forms import CommentForm, DraftForm, RequestActionForm, RequestCreateForm, TaskForm
from approvals.models import RequestType, State
from approvals.models.discussion import attachment_storage
from approvals.selectors.delegations import request_delegations
from approvals.selectors.team import reassignable_handoffs
from approvals.views.common import me
from approvals.views.refusals import Refusal, refuse, take_refusal
from approvals.views.request_refusals import (
    COMMENT,
    refuse_on_request_page,
    refused_forms,
)
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
    schema = request_type.payload_schema or {}
    form = RequestCreateForm(request.POST or None, payload_schema=schema)
    template = "approvals/request_new.html"
    if request.method != "POST":
        refusal = take_refusal(request)
        if refusal is None:
            return render(request, template, _new_context(request_type, form))
        again = refusal.bind(lambda data: RequestCreateForm(data, payload_schema=schema))
        return render(request, template, _new_context(request_type, again), status=refusal.status)

    def refused(status: int) -> HttpResponse:
        return refuse(
            request,
            back=request.path,
            form_name="new",
            form=form,
            status=status,
            page=lambda: (template, _new_context(request_type, form)),
        )

    if not form.is_valid():
        return refused(400)
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
        return refused(exc.http_status)
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
    refusal: Refusal | None = None,
) -> dict[str, Any]:
    """The request page's context; a `refusal` (a refused post, kept over the redirect back
    here) puts its form back in its place, with its errors, and says its problem."""
    page = selectors.request_page(request_id=pk, user=me(request))
    if page is None:
        raise Http404("No such request.")
    req = page.request
    refused = (
        refused_forms(refusal, req=req, resubmit_offered=Action.RESUBMIT in page.actions) if refusal else {}
    )
    form = form or refused.get("form")
    task_form = task_form or refused.get("task_form")
    comment_form = comment_form or refused.get("comment_form")
    problem = problem or (refusal.problem if refusal else None) or None
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
        **{name: refused[name] for name in ("acting_form", "reassign_form") if name in refused},
    }


@login_required
@require_safe
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    refusal = take_refusal(request)
    context = detail_context(request, pk, refusal=refusal)
    return render(
        request, "approvals/request_detail.html", context, status=refusal.status if refusal else 200
    )


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
    initial = {"title": visible.title, "description": visible.description, "version": visible.version}

    def draft_form(data: QueryDict | None) -> DraftForm:
        return DraftForm(data, payload_schema=schema, payload=visible.payload, initial=initial)

    form = draft_form(request.POST or None)
    template = "approvals/request_edit.html"
    if request.method != "POST":
        refusal = take_refusal(request)
        form = refusal.bind(draft_form) if refusal is not None else form
        shown = {"req": visible, "request_type": visible.request_type, "form": form}
        return render(request, template, shown, status=refusal.status if refusal else 200)
    context = {"req": visible, "request_type": visible.request_type, "form": form}

    def refused(status: int) -> HttpResponse:
        return refuse(
            request,
            back=request.path,
            form_name="draft",
            form=form,
            status=status,
            page=lambda: (template, context),
        )

    if not form.is_valid():
        return refused(400)
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
        return refused(exc.http_status)
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
            return refuse_on_request_page(
                request,
                pk,
                form_name=COMMENT,
                form=form,
                status=exc.http_status,
                context=lambda: detail_context(request, pk, comment_form=form),
            )
        messages.success(request, "Posted on the thread.")
        return redirect(f"{reverse('approvals:request_detail', args=[pk])}#thread")
    return refuse_on_request_page(
        request,
        pk,
        form_name=COMMENT,
        form=form,
        status=400,
        context=lambda: detail_context(request, pk, comment_form=form),
    )


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
