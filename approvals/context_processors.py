"""What every page's navigation shows a signed-in person: how much waits in their inbox
(and how much of it is overdue), and their unread notifications."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from approvals import selectors


def workspace(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Read only when a template shows them (two queries), and once per request: a page
    # that already counted its inbox leaves the counts on the request.
    return {"nav": SimpleLazyObject(lambda: selectors.nav_counts(user=user, request=request))}
