"""Reads behind the approvals pages. Each runs a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django_fsm import can_proceed, has_transition_perm

from approvals import policies
from approvals.models import ApprovalRequest, RequestType, State
from approvals.services import ACTIONS
from workflows.models import AuditEntry, Handoff
from workflows.permissions import may_claim, may_reassign
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


def requests_all(
    *, state: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[ApprovalRequest]:
    """Every request, newest first, optionally in one state; keyset-paged on id.

    One query whatever the length (requester and type joined in); the state filter uses
    the index request_by_state, the unfiltered list the primary key.
    """
    query = ApprovalRequest.objects.select_related("requester", "request_type")
    if state:
        query = query.filter(state=state)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return list(query.order_by("-id")[:limit])


def request_types_for_submitter(*, user: User) -> list[RequestType]:
    return [t for t in RequestType.objects.filter(is_active=True) if policies.may_submit_type(user, t)]


STATE_LABELS: dict[str, str] = {str(value): str(label) for value, label in State.choices}
HISTORY_LABELS = {
    "create": "created",
    "submit": "submitted",
    "resubmit": "resubmitted",
    "approve": "approved",
    "reject": "rejected",
    "request_changes": "asked for changes",
    "withdraw": "withdrew",
    "cancel": "cancelled",
    "claim": "claimed",
    "unclaim": "released",
    "reassign": "reassigned",
}


@dataclass(frozen=True)
class HistoryItem:
    """One audit entry as the request page shows it: who, when, for whom, from → to, why."""

    entry: AuditEntry
    verb: str
    source_label: str
    target_label: str

    @property
    def moved(self) -> bool:
        return self.entry.source != self.entry.target


def history_item(entry: AuditEntry) -> HistoryItem:
    return HistoryItem(
        entry=entry,
        verb=HISTORY_LABELS.get(entry.action, entry.action.replace("_", " ")),
        source_label=STATE_LABELS.get(entry.source, entry.source) if entry.source else "",
        target_label=STATE_LABELS.get(entry.target, entry.target),
    )


@dataclass(frozen=True)
class RequestPage:
    request: ApprovalRequest
    handoffs: list[Handoff]
    history: list[HistoryItem]
    actions: list[str]
    # Handoffs the viewer may claim / give back to their group from this page.
    claimable: frozenset[int] = frozenset()
    releasable: frozenset[int] = frozenset()

    @property
    def holders(self) -> list[Handoff]:
        """The open handoffs: who holds the request now."""
        return [h for h in self.handoffs if h.is_open]


def request_visible(*, request_id: int, user: User) -> ApprovalRequest | None:
    """The request if `user` may see it, else None (pages answer 404 either way, so that
    a request's existence is not revealed to people who may not see it)."""
    request = (
        ApprovalRequest.objects.select_related("requester", "request_type").filter(pk=request_id).first()
    )
    if request is None or not policies.may_view(request, user):
        return None
    return request


def request_page(*, request_id: int, user: User) -> RequestPage | None:
    """A request with its handoffs, history and the actions `user` may take now; None when
    it does not exist or `user` may not see it (the page answers 404 either way)."""
    request = request_visible(request_id=request_id, user=user)
    if request is None:
        return None
    handoffs = handoffs_for_instance(request)
    return RequestPage(
        request=request,
        handoffs=handoffs,
        history=[history_item(e) for e in audit_entries_for_instance(request)],
        actions=actions_available(request=request, user=user),
        claimable=frozenset(h.pk for h in handoffs if may_claim(user=user, handoff=h)),
        releasable=frozenset(
            h.pk
            for h in handoffs
            if h.is_open
            and h.candidate_group_id is not None
            and h.assignee_id is not None
            and may_reassign(user=user, handoff=h)
        ),
    )


def handoff_request(*, handoff_id: int) -> tuple[Handoff, ApprovalRequest] | None:
    """A handoff of an approval request with its request, or None (two queries)."""
    handoff = Handoff.objects.select_related("content_type").filter(pk=handoff_id).first()
    if handoff is None or handoff.content_type.model_class() is not ApprovalRequest:
        return None
    request = ApprovalRequest.objects.filter(pk=handoff.object_id).first()
    return None if request is None else (handoff, request)


def actions_available(*, request: ApprovalRequest, user: User) -> list[str]:
    """The lifecycle actions `user` could take on `request` now (state and permission)."""
    found = []
    for name in ACTIONS:
        method = getattr(request, name)
        if can_proceed(method) and has_transition_perm(method, user):
            found.append(name)
    return found
