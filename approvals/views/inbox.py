"""The inbox: what waits for me, filtered and searched, with its saved views; and what
is done from it to many items at once (each item's result shown, the failed kept selected)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from approvals import selectors, services
from approvals.actions import Action
from approvals.forms import BulkActionForm, InboxFilterForm, SavedViewForm
from approvals.views.common import PAGE_SIZE, WorkspaceRequest, me
from workflows import errors

BULK_RESULTS = "inbox.bulk_results"


def _inbox_url(request: HttpRequest, target: str) -> str:
    """`target` if it is this site's inbox (with its filters), else the plain inbox."""
    inbox = reverse("approvals:inbox")
    ok = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if ok and target.startswith(inbox) else inbox


@dataclass(frozen=True)
class Tab:
    label: str
    count: int
    url: str
    current: bool
    view: str


def _tabs(filters: selectors.InboxFilter, counts: selectors.InboxCounts) -> list[Tab]:
    """Whose items: everything, mine, my groups' queues, and (when someone delegated to
    me) theirs; each with its count and the other filters kept."""
    tabs = [
        ("all", "Everything", counts.total),
        ("mine", "Assigned to me", counts.mine),
        ("queue", "My groups' queues", counts.queue),
        ("delegated", "For people I stand in for", counts.delegated),
        ("snoozed", "Snoozed", counts.snoozed),
    ]
    return [
        Tab(label, count, f"?{filters.query(view=view)}", filters.view == view, view)
        for view, label, count in tabs
        if view not in {"delegated", "snoozed"} or count or filters.view == view
    ]


@login_required
@require_safe
def inbox(request: WorkspaceRequest) -> HttpResponse:
    """One page of the inbox with its counts, filters and saved views. A bulk action's
    results (left in the session by `inbox_act`) are shown once, the failed items selected."""
    user = me(request)
    form = InboxFilterForm(request.GET, types=selectors.request_type_choices())
    reach = selectors.inbox_reach(user)
    # Shown once, by the page the bulk action sends the browser to: not by a live refresh
    # or an htmx swap, which may run just before that page loads.
    partial = bool(request.htmx) or request.headers.get("X-Requested-With") == "live"
    results: dict[str, Any] | None = (
        request.session.get(BULK_RESULTS) if partial else request.session.pop(BULK_RESULTS, None)
    )
    context: dict[str, Any] = {
        "form": form,
        "views": selectors.inbox_views(user=user, reach=reach),
        "results": results,
        "selected": {r["handoff_id"] for r in results["items"] if not r["ok"]} if results else set(),
        "bulk_actions": [(a.value, a.label) for a in (Action.APPROVE, Action.REQUEST_CHANGES, Action.REJECT)],
        "save_form": SavedViewForm(initial={"query": request.GET.urlencode()}),
    }
    if not form.is_valid():
        counts = selectors.inbox_counts(reach)
        request.inbox_counts = counts
        context.update(page=None, counts=counts, filters=selectors.InboxFilter())
        return render(request, "approvals/inbox.html", context, status=400)
    filters = selectors.InboxFilter(**form.filter_values())
    page = selectors.inbox_page(
        user=user, filters=filters, cursor=form.cleaned_data["after"], limit=PAGE_SIZE, reach=reach
    )
    request.inbox_counts = page.counts
    context.update(
        page=page,
        counts=page.counts,
        filters=filters,
        tabs=_tabs(filters, page.counts),
        here=filters.query(),
        next_url=f"?{filters.query(after=page.next_cursor)}" if page.next_cursor else "",
        filtered=filters.query(view="all", sort="due") != "",
    )
    template = (
        "approvals/_inbox_list.html" if request.htmx and not request.htmx.boosted else "approvals/inbox.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def inbox_act(request: HttpRequest) -> HttpResponse:
    """The same action on the selected items. Reject asks first (it cannot be undone);
    then every item's result is kept for the inbox to show, and the browser goes back to
    it (post/redirect/get)."""
    form = BulkActionForm(request.POST)
    back = _inbox_url(request, request.POST.get("next", ""))
    if not form.is_valid():
        problems = "; ".join(f"{e}" for errs in form.errors.values() for e in errs)
        messages.error(request, f"Nothing was done: {problems}")
        return redirect(back)
    action = Action(form.cleaned_data["action"])
    items: list[int] = form.cleaned_data["items"]
    comment = form.cleaned_data["comment"]
    if action.is_irreversible and not form.cleaned_data["confirmed"]:
        return render(
            request,
            "approvals/inbox_confirm.html",
            {"action": action, "items": items, "comment": comment, "next": back},
        )
    try:
        results = services.items_act(actor=me(request), action=action, handoff_ids=items, comment=comment)
    except errors.InvalidInput as exc:
        problems = "; ".join(m for ms in exc.field_errors.values() for m in ms) or exc.detail
        messages.error(request, f"Nothing was done: {problems}")
        request.session[BULK_RESULTS] = {
            "action": action.label,
            "items": [{"handoff_id": i, "reference": "", "ok": False, "message": problems} for i in items],
        }
        return redirect(back)
    done = sum(1 for r in results if r.ok)
    request.session[BULK_RESULTS] = {
        "action": action.label,
        "items": [
            {"handoff_id": r.handoff_id, "reference": r.reference, "ok": r.ok, "message": r.message}
            for r in results
        ],
    }
    failed = len(results) - done
    summary = (
        f"{action.label}: {done} done" + (f", {failed} not done (still selected)" if failed else "") + "."
    )
    (messages.warning if failed else messages.success)(request, summary)
    return redirect(back)


@login_required
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST)
    query = request.POST.get("query", "")
    back = f"{reverse('approvals:inbox')}?{query}" if query else reverse("approvals:inbox")
    if not form.is_valid():
        messages.error(
            request, "The view was not saved: " + "; ".join(str(e) for e in form.errors.get("name", []))
        )
        return redirect(back)
    try:
        view = services.saved_view_create(owner=me(request), name=form.cleaned_data["name"], query=query)
    except errors.InvalidInput as exc:
        messages.error(
            request, "The view was not saved: " + "; ".join(exc.field_errors.get("name", [exc.detail]))
        )
        return redirect(back)
    messages.success(request, f"Saved the view '{view.name}'.")
    return redirect(back)


@login_required
@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.saved_view_delete(owner=me(request), view_id=pk)
    except errors.NotFound:
        raise Http404("No such view.") from None
    messages.success(request, "The view is gone.")
    return redirect("approvals:inbox")
