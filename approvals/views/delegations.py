"""Out of office: the delegations page (set one up, for oneself or, as a manager, for a
team member; the open and past ones) and revoking one after a confirmation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import User
from approvals.delegations import delegation_create, delegation_revoke
from approvals.manage_forms import DelegationForm
from approvals.selectors import delegations as selectors
from approvals.views.common import me, page_param
from approvals.views.refusals import refuse, take_refusal
from workflows import errors

TEMPLATE = "approvals/delegations.html"


def _context(request: HttpRequest, form: DelegationForm | None = None) -> dict[str, Any]:
    user = me(request)
    return {
        "form": form or DelegationForm(me=user, delegators=selectors.delegators_for(user)),
        "lists": selectors.delegation_lists(user=user, before_id=page_param(request, "before")),
        "standing_in": selectors.waiting_for_delegators(user),
    }


def _refused(request: HttpRequest, form: DelegationForm, *, status: int) -> HttpResponse:
    """Back to the page with the form as posted (approvals.views.refusals)."""
    return refuse(
        request,
        back=reverse("approvals:delegations"),
        form_name="delegation",
        form=form,
        status=status,
        page=lambda: (TEMPLATE, _context(request, form)),
        anchor="new-delegation",
    )


@login_required
@require_http_methods(["GET", "POST"])
def delegations(request: HttpRequest) -> HttpResponse:
    """GET: the form and the lists. POST: set up a delegation, then back here (PRG)."""
    user = me(request)
    if request.method != "POST":
        refusal = take_refusal(request)
        if refusal is None:
            return render(request, TEMPLATE, _context(request))
        delegators = selectors.delegators_for(user)
        again = refusal.bind(lambda data: DelegationForm(data, me=user, delegators=delegators))
        return render(request, TEMPLATE, _context(request, again), status=refusal.status)
    form = DelegationForm(request.POST, me=user, delegators=selectors.delegators_for(user))
    if not form.is_valid():
        return _refused(request, form, status=400)
    starts_at, ends_at = form.moments
    delegator: User = form.cleaned_data["delegator"]
    delegate: User = form.cleaned_data["delegate"]
    try:
        delegation_create(
            actor=user,
            delegator=delegator,
            delegate=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            scope=form.cleaned_data["scope"],
            reason=form.cleaned_data["reason"],
        )
    except errors.WorkflowError as exc:
        form.add_service_error(exc)
        return _refused(request, form, status=exc.http_status)
    whose = "your" if delegator.pk == user.pk else f"{delegator.display_name}'s"
    last_day = timezone.localtime(ends_at).date() - timedelta(days=1)
    messages.success(
        request, f"{delegate.display_name} now stands in for {whose} work until {last_day:%Y-%m-%d}."
    )
    return redirect("approvals:delegations")


@login_required
@require_http_methods(["GET", "POST"])
def delegation_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: ask to confirm. POST: revoke it at once, then back to the list (PRG)."""
    user = me(request)
    found = selectors.delegation_for_revoke(delegation_id=pk, user=user)
    if found is None:
        raise Http404("No such delegation.")
    template = "approvals/delegation_revoke.html"
    if request.method != "POST":
        status = 200 if found.revocable and found.is_open else (403 if not found.revocable else 409)
        refusal = take_refusal(request)
        context = {"row": found, "problem": refusal.problem if refusal else ""}
        return render(request, template, context, status=refusal.status if refusal else status)
    try:
        revoked = delegation_revoke(actor=user, delegation_id=pk)
    except errors.NotFound:
        raise Http404("No such delegation.") from None
    except errors.WorkflowError as exc:
        now = selectors.delegation_for_revoke(delegation_id=pk, user=user) or found
        detail = exc.detail
        return refuse(
            request,
            back=reverse("approvals:delegation_revoke", args=[pk]),
            form_name="revoke",
            problem=detail,
            status=exc.http_status,
            page=lambda: (template, {"row": now, "problem": detail}),
        )
    messages.success(
        request,
        f"Revoked: {revoked.delegate.display_name} no longer acts for {revoked.delegator.display_name}.",
    )
    return redirect("approvals:delegations")
