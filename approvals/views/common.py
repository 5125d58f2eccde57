"""What the page views share: who is asking, paging parameters, plain problem messages."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.selectors import InboxCounts
from workflows import errors

PAGE_SIZE = 50


class WorkspaceRequest(HttpRequest):
    """A request as the page views see it: with django-htmx's details, and the inbox counts a
    page leaves for the navigation (approvals.context_processors) so they are read once."""

    htmx: HtmxDetails
    inbox_counts: InboxCounts


def page_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def me(request: HttpRequest) -> User:
    """The logged-in user (every view here requires login)."""
    return cast(User, request.user)


def problem_message(exc: errors.WorkflowError, req: ApprovalRequest, what: str) -> str:
    """Say plainly what went wrong; `req` is the request as it is now (reloaded)."""
    now = req.get_state_display()
    if isinstance(exc, errors.StaleVersion):
        return (
            f"{req.reference} changed since you loaded it (someone else acted; it is now {now}). "
            "Nothing was done: check it below and try again."
        )
    if isinstance(exc, errors.TransitionNotAllowed):
        return f"You cannot {what} {req.reference}: it is {now} now. Nothing was done."
    return exc.detail
