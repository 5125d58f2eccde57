"""The lists: home, my requests, every request (the inbox is approvals.views.inbox)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from approvals import policies, selectors
from approvals.forms import MyRequestsFilterForm, RequestFilterForm
from approvals.views.common import PAGE_SIZE, WorkspaceRequest, me


@login_required
@require_safe
def home(request: WorkspaceRequest) -> HttpResponse:
    user = me(request)
    page = selectors.inbox_page(user=user, limit=10)
    request.inbox_counts = page.counts
    context = {
        "page": page,
        "mine": selectors.request_rows(selectors.requests_of_requester(user=user, limit=10)),
    }
    return render(request, "approvals/home.html", context)


@login_required
@require_safe
def my_requests(request: HttpRequest) -> HttpResponse:
    """The person's own requests, newest first, filtered by state and type, searched."""
    form = MyRequestsFilterForm(request.GET, types=selectors.request_type_choices())
    if not form.is_valid():
        return render(request, "approvals/my_requests.html", {"form": form, "rows": []}, status=400)
    filters = {k: form.cleaned_data[k] for k in ("state", "request_type", "q")}
    rows = selectors.requests_of_requester(
        user=me(request), before_id=form.cleaned_data["before"], limit=PAGE_SIZE, **filters
    )
    more = (
        f"?{urlencode({**{k: v for k, v in filters.items() if v}, 'before': rows[-1].pk})}"
        if len(rows) == PAGE_SIZE
        else ""
    )
    context = {
        "form": form,
        "rows": selectors.request_rows(rows),
        "more": more,
        "filtered": any(filters.values()),
    }
    return render(request, "approvals/my_requests.html", context)


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
