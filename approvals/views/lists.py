"""The lists: home, the inbox, my requests, every request."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from approvals import policies, selectors
from approvals.forms import RequestFilterForm
from approvals.views.common import PAGE_SIZE, me, page_param


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    user = me(request)
    context = {
        "inbox": selectors.inbox_for_user(user=user, limit=20),
        "mine": selectors.request_rows(selectors.requests_of_requester(user=user, limit=20)),
    }
    return render(request, "approvals/home.html", context)


@login_required
@require_safe
def inbox(request: HttpRequest) -> HttpResponse:
    rows = selectors.inbox_for_user(user=me(request), after_id=page_param(request, "after"), limit=PAGE_SIZE)
    next_after = rows[-1].handoff.pk if len(rows) == PAGE_SIZE else None
    return render(request, "approvals/inbox.html", {"rows": rows, "next_after": next_after})


@login_required
@require_safe
def my_requests(request: HttpRequest) -> HttpResponse:
    rows = selectors.requests_of_requester(
        user=me(request), before_id=page_param(request, "before"), limit=PAGE_SIZE
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
    if not policies.may_view_all(me(request)):
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
