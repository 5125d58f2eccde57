"""Reassigning items to a person or a group, with a reason: many at once from the team
view, or one request's from its page. Post/redirect/get when every item went; otherwise
the page again, each item's result beside it and the failed ones still ticked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from approvals import selectors
from approvals.manage_forms import ReassignForm
from approvals.reassignment import ReassignResult, requests_reassign
from approvals.selectors.team import may_see_team
from approvals.views.common import me
from approvals.views.refusals import refuse
from approvals.views.request_refusals import REASSIGN, refuse_on_request_page
from approvals.views.requests import detail_context
from approvals.views.team import TEMPLATE as TEAM_TEMPLATE
from approvals.views.team import shown_result, team_context
from workflows import errors


def _target_label(form: ReassignForm) -> str:
    person, group = form.cleaned_data.get("to_user"), form.cleaned_data.get("to_group")
    if person is not None and group is not None:
        return f"{person.display_name} (from {group.name})"
    return person.display_name if person is not None else str(group)


def _failure_status(results: list[ReassignResult]) -> int:
    """The status of a batch with failures: theirs when they agree, else 409 (a conflict
    between what was asked and what the items are now)."""
    statuses = {r.error.http_status for r in results if r.error is not None}
    return statuses.pop() if len(statuses) == 1 else 409


def _reassign(
    request: HttpRequest,
    *,
    rerender: Callable[[ReassignForm, list[ReassignResult], set[int], int], HttpResponse],
    success_url: str,
) -> HttpResponse:
    """`rerender(form, results, still ticked, status)` answers a refusal (approvals.views.refusals:
    back to the page, or the page's content for htmx); every item done redirects to `success_url`."""
    form = ReassignForm(request.POST)
    if not form.is_valid():
        chosen = form.cleaned_data.get("handoffs") or []
        return rerender(form, [], set(chosen), 400)
    chosen = form.cleaned_data["handoffs"]
    try:
        results = requests_reassign(
            actor=me(request),
            handoff_ids=chosen,
            reason=form.cleaned_data["reason"],
            to_user=form.cleaned_data["to_user"],
            to_group=form.cleaned_data["to_group"],
        )
    except errors.WorkflowError as exc:
        form.add_service_error(exc)
        return rerender(form, [], set(chosen), exc.http_status)
    done = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    if not failed:
        refs = ", ".join(r.request.reference for r in done if r.request is not None)
        messages.success(request, f"Reassigned {refs} to {_target_label(form)}.")
        return redirect(success_url)
    # Some went, some did not: show each result; the failed stay ticked to try again.
    return rerender(form, results, {r.handoff_id for r in failed}, _failure_status(results))


@login_required
@require_POST
def team_reassign(request: HttpRequest) -> HttpResponse:
    """Reassign the items ticked on the team view (the filters ride in the query string)."""
    query = request.GET.urlencode()
    success_url = reverse("approvals:team") + (f"?{query}" if query else "")

    def rerender(
        form: ReassignForm, results: list[ReassignResult], selected: set[int], status: int
    ) -> HttpResponse:
        def page() -> tuple[str, dict[str, Any]]:
            return TEAM_TEMPLATE, team_context(request, form=form, results=results, selected=selected)[0]

        return refuse(
            request,
            back=reverse("approvals:team"),
            query=query,
            form_name="team-reassign",
            form=form,
            status=status,
            page=page,
            anchor="team-items",
            extra={"results": [shown_result(r) for r in results], "selected": sorted(selected)},
        )

    # The permission answers first: someone who may not see the team learns nothing.
    if not may_see_team(me(request)):
        raise PermissionDenied("Only managers reassign from the team view.")
    return _reassign(request, rerender=rerender, success_url=success_url)


@login_required
@require_POST
def request_reassign(request: HttpRequest, pk: int) -> HttpResponse:
    """Reassign a request's open handoff from its page (its holder or a manager)."""
    if selectors.request_visible(request_id=pk, user=me(request)) is None:
        raise Http404("No such request.")

    def rerender(
        form: ReassignForm, results: list[ReassignResult], selected: set[int], status: int
    ) -> HttpResponse:
        failed = [r for r in results if not r.ok]
        problem = (
            "Not reassigned: " + " ".join(r.problem for r in failed) + " Nothing was changed."
            if failed
            else ""
        )
        return refuse_on_request_page(
            request,
            pk,
            form_name=REASSIGN,
            form=form,
            problem=problem,
            status=status,
            context=lambda: {**detail_context(request, pk, problem=problem or None), "reassign_form": form},
        )

    return _reassign(request, rerender=rerender, success_url=reverse("approvals:request_detail", args=[pk]))
