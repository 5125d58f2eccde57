"""Reads of the REST API: which requests a caller may see (as one query), and one
request with everything its representation shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import BigIntegerField, Q, QuerySet
from django.db.models.functions import Cast

from approvals import policies
from approvals.lifecycle import ActionOption, Explanation, action_options, request_why_not
from approvals.models import ApprovalRequest, Decision, RequestRevision
from approvals.selectors.request_page import request_visible
from workflows.models import AuditEntry, Handoff
from workflows.permissions import user_group_ids
from workflows.selectors import audit_entries_for_instance, handoffs_for_instance

if TYPE_CHECKING:
    from accounts.models import User


def payload_digest(request: ApprovalRequest) -> str:
    """SHA-256 of what the current revision says (title, description, payload as
    canonical JSON): a client binds its decision to exactly what it showed."""
    content = {"title": request.title, "description": request.description, "payload": request.payload}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def requests_visible(user: User) -> QuerySet[ApprovalRequest]:
    """The requests `user` may see, as one query: their own, those they hold, held for
    their groups or acted on (any handoff of theirs), or all of them for those who see
    everything (approvals.policies.may_view's rule; a delegate sees a delegator's items
    on the request itself and in the inbox, not in this list)."""
    requests = ApprovalRequest.objects.select_related("request_type", "requester")
    if not user.is_active:
        return requests.none()
    if policies.may_view_all(user):
        return requests
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    held = (
        Handoff.objects.filter(content_type=content_type)
        .filter(Q(assignee=user) | Q(candidate_group_id__in=list(user_group_ids(user))) | Q(closed_by=user))
        .annotate(request_id=Cast("object_id", BigIntegerField()))
        .values("request_id")
    )
    return requests.filter(Q(requester=user) | Q(pk__in=held))


@dataclass(frozen=True)
class RequestDetail:
    """One request as the API shows it to one caller."""

    request: ApprovalRequest
    handoffs: list[Handoff]
    entries: list[AuditEntry]
    decisions: list[Decision]
    revisions: list[RequestRevision]
    options: list[ActionOption]
    why_not: Explanation | None

    @property
    def open_handoffs(self) -> list[Handoff]:
        return [h for h in self.handoffs if h.is_open]


def request_detail(*, request_id: Any, user: User) -> RequestDetail | None:
    """The request with its handoffs, history, decisions, revisions and the caller's
    actions (each with availability and, if refused, why: the request page's own
    explanation); None when it does not exist or `user` may not see it (both a 404)."""
    try:
        pk = int(request_id)
    except (TypeError, ValueError):
        return None
    request = request_visible(request_id=pk, user=user)
    if request is None:
        return None
    return request_detail_of(request=request, user=user)


def request_detail_of(*, request: ApprovalRequest, user: User) -> RequestDetail:
    """`request_detail` of a request already loaded (with its requester, type and policy
    version) and known to be visible to `user`: four queries (handoffs, decisions,
    revisions, history), whatever their length; the actions come from one evaluation."""
    handoffs = handoffs_for_instance(request)
    decisions = list(
        Decision.objects.filter(request=request)
        .select_related("principal", "actor")
        .order_by("revision", "id")
    )
    revisions = list(RequestRevision.objects.filter(request=request).order_by("number"))
    open_handoffs = [h for h in handoffs if h.is_open]
    options = action_options(request=request, user=user, open_handoffs=open_handoffs, decisions=decisions)
    return RequestDetail(
        request=request,
        handoffs=handoffs,
        entries=audit_entries_for_instance(request),
        decisions=decisions,
        revisions=revisions,
        options=options,
        why_not=request_why_not(request=request, user=user, open_handoffs=open_handoffs, options=options),
    )
