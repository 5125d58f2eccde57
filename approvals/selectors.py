"""Reads behind the approvals pages. Each runs a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django_fsm import can_proceed, has_transition_perm

from approvals import policies
from approvals.models import ApprovalRequest, RequestType
from approvals.services import ACTIONS
from workflows.models import AuditEntry, Handoff
from workflows.selectors import audit_entries_for_instance, handoffs_for_instance, handoffs_open_for_user

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class InboxRow:
    handoff: Handoff
    request: ApprovalRequest


def inbox_for_user(*, user: User, after_id: int | None = None, limit: int = 50) -> list[InboxRow]:
    """Requests waiting for `user` or for a group of theirs, oldest handoff first (keyset on
    the handoff id). Three queries whatever the length: groups, handoffs, requests."""
    handoffs = handoffs_open_for_user(user=user, model=ApprovalRequest, after_id=after_id, limit=limit)
    requests = ApprovalRequest.objects.select_related("requester", "request_type").in_bulk(
        [int(h.object_id) for h in handoffs]
    )
    return [
        InboxRow(handoff=h, request=requests[int(h.object_id)])
        for h in handoffs
        if int(h.object_id) in requests
    ]


def requests_of_requester(
    *, user: User, before_id: int | None = None, limit: int = 50
) -> list[ApprovalRequest]:
    """The user's own requests, newest first, keyset-paged on id (index request_by_requester)."""
    query = ApprovalRequest.objects.filter(requester=user).select_related("request_type")
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return list(query.order_by("-id")[:limit])


def request_types_for_submitter(*, user: User) -> list[RequestType]:
    return [t for t in RequestType.objects.filter(is_active=True) if policies.may_submit_type(user, t)]


@dataclass(frozen=True)
class RequestPage:
    request: ApprovalRequest
    handoffs: list[Handoff]
    history: list[AuditEntry]
    actions: list[str]


def request_page(*, request_id: int, user: User) -> RequestPage | None:
    """A request with its handoffs, history and the actions `user` may take now; None when
    it does not exist or `user` may not see it (the page answers 404 either way)."""
    request = (
        ApprovalRequest.objects.select_related("requester", "request_type").filter(pk=request_id).first()
    )
    if request is None or not policies.may_view(request, user):
        return None
    return RequestPage(
        request=request,
        handoffs=handoffs_for_instance(request),
        history=audit_entries_for_instance(request),
        actions=actions_available(request=request, user=user),
    )


def actions_available(*, request: ApprovalRequest, user: User) -> list[str]:
    """The lifecycle actions `user` could take on `request` now (state and permission)."""
    found = []
    for name in ACTIONS:
        method = getattr(request, name)
        if can_proceed(method) and has_transition_perm(method, user):
            found.append(name)
    return found
