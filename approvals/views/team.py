"""The team view: a manager's team's workload per member and per group, and its items,
with the inbox's filters; items are reassigned from here (approvals.views.reassign)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from approvals.manage_forms import ReassignForm, TeamFilterForm
from approvals.reassignment import ReassignResult
from approvals.selectors.team import TeamFilter, may_see_team, team_page
from approvals.views.common import PAGE_SIZE, me
from approvals.views.refusals import take_refusal

TEMPLATE = "approvals/team.html"


def team_context(
    request: HttpRequest,
    *,
    form: ReassignForm | None = None,
    results: list[ReassignResult] | list[dict[str, Any]] | None = None,
    selected: set[int] | None = None,
) -> tuple[dict[str, Any], int]:
    """The team page's context and status: 400 with the filter's errors (and no items)
    when the query string is wrong. The filters come from the query string, also after a
    POST to reassign (the form posts to a URL that carries them)."""
    user = me(request)
    if not may_see_team(user):
        raise PermissionDenied("Only managers see the team view.")
    filter_form = TeamFilterForm(request.GET)
    valid = filter_form.is_valid()
    filters = filter_form.team_filter() if valid else TeamFilter()
    page = team_page(
        user=user,
        filters=filters,
        cursor=filter_form.cleaned_data.get("cursor", "") if valid else "",
        limit=PAGE_SIZE,
    )
    if not valid:
        page.rows, page.next_cursor = [], ""
    context = {
        "page": page,
        "filter_form": filter_form,
        "form": form or ReassignForm(),
        "results": results or [],
        "selected": selected or set(),
        "query": filters.query(),
    }
    return context, 200 if valid else 400


def shown_result(result: ReassignResult) -> dict[str, Any]:
    """One item's result as the page reads it, in a form a session can keep (JSON)."""
    return {
        "handoff_id": result.handoff_id,
        "ok": result.ok,
        "problem": result.problem,
        "request": {"reference": result.request.reference} if result.request is not None else None,
        "successor": {"holder_label": result.successor.holder_label()} if result.successor else None,
    }


@login_required
@require_safe
def team(request: HttpRequest) -> HttpResponse:
    """The team view; after a refused reassignment (approvals.views.refusals), with the
    form as it was posted, each item's result, and the failed items still ticked."""
    refusal = take_refusal(request)
    if refusal is None:
        context, status = team_context(request)
    else:
        context, status = team_context(
            request,
            form=refusal.bind(ReassignForm),
            results=refusal.extra.get("results") or [],
            selected=set(refusal.extra.get("selected") or []),
        )
        status = refusal.status
    return render(request, TEMPLATE, context, status=status)
