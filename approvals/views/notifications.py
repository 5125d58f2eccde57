"""The bell: what happened to my items, newest first, and marking it read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from approvals import selectors, services
from approvals.views.common import PAGE_SIZE, me


@login_required
@require_safe
def notification_list(request: HttpRequest) -> HttpResponse:
    before = request.GET.get("before", "")
    rows = selectors.notifications_of(
        user=me(request), before_id=int(before) if before.isdigit() else None, limit=PAGE_SIZE
    )
    more = rows[-1].pk if len(rows) == PAGE_SIZE else None
    return render(request, "approvals/notifications.html", {"rows": rows, "more": more})


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification read (and open its request), or all of them."""
    raw = request.POST.get("notification", "")
    if raw.isdigit():
        services.notifications_mark_read(recipient=me(request), notification_ids=[int(raw)])
        target = selectors.notification_request_id(user=me(request), notification_id=int(raw))
        if target is not None and request.POST.get("open"):
            return redirect("approvals:request_detail", pk=target)
    else:
        services.notifications_mark_read(recipient=me(request))
    return redirect("approvals:notifications")
