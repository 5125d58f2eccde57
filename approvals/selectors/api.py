"""Reads of the REST API: which requests a caller may see (as one query), and one
request with everything its representation shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import BigIntegerField, Q, QuerySet
from django.db.models.functions import Cast

from approvals import policies
from approvals.lifecycle import ActionOption, Explanation, action_options, request_why_not
from approvals.models import ApprovalRequest, Decision, RequestRevision
from approvals.selectors.api_rows import (
    decisions_rows,
    handoffs_rows,
    history_rows,
    open_handoffs_rows,
    request_row,
    revisions_rows,
)
from workflows.models import AuditEntry, Handoff
from workflows.permissions import user_group_ids

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
    their groups or acted on (any handoff of theirs), those waiting for someone who
    delegated to them now, as far as the delegation reaches, or all of them for those who
    see everything (approvals.policies.may_view's rule, delegators_waiting included)."""
    requests = ApprovalRequest.objects.select_related("request_type", "requester")
    if not user.is_active:
        return requests.none()
    if policies.may_view_all(user):
        return requests
    handoffs = Handoff.objects.filter(content_type=ContentType.objects.get_for_model(ApprovalRequest))
    held = handoffs.filter(
        Q(assignee=user) | Q(candidate_group_id__in=list(user_group_ids(user))) | Q(closed_by=user)
    )
    visible = Q(requester=user) | Q(pk__in=_request_ids(held))
    for delegator_id, scope in _delegated_scopes(user).items():
        # What the delegator holds now (theirs, or their groups' unclaimed), never their own
        # request, of the types the delegation reaches: policies.delegators_waiting's rule.
        waiting = handoffs.filter(closed_at__isnull=True).filter(
            Q(assignee_id=delegator_id)
            | Q(assignee__isnull=True, candidate_group__in=Group.objects.filter(user=delegator_id))
        )
        reached = Q(pk__in=_request_ids(waiting)) & ~Q(requester_id=delegator_id)
        if scope is not None:
            reached &= Q(request_type__slug__in=sorted(scope))
        visible |= reached
    return requests.filter(visible)


def _request_ids(handoffs: QuerySet[Handoff]) -> QuerySet[Any, Any]:
    """The requests `handoffs` belong to, as a subquery (handoffs keep their key as text)."""
    return handoffs.annotate(request_id=Cast("object_id", BigIntegerField())).values("request_id")


def _delegated_scopes(user: User) -> dict[int, frozenset[str] | None]:
    """Per active delegator of `user`, the request types their delegations reach (None:
    every type); one query."""
    scopes: dict[int, frozenset[str] | None] = {}
    for delegation in policies.delegations_received(user):
        if not delegation.delegator.is_active:
            continue
        known = scopes.get(delegation.delegator_id, frozenset())
        scopes[delegation.delegator_id] = (
            None if known is None or not delegation.scope else known | set(delegation.scope)
        )
    return scopes


@dataclass(frozen=True)
class RequestDetail:
    """One request as the API shows it to one caller."""

    request: ApprovalRequest
    open_handoffs: list[Handoff]
    entries: list[AuditEntry]
    decisions: list[Decision]
    revisions: list[RequestRevision]
    options: list[ActionOption]
    why_not: Explanation | None


def request_detail(*, request_id: Any, user: User) -> RequestDetail | None:
    """The request with its handoffs, history, decisions, revisions and the caller's
    actions (each with availability and, if refused, why: the request page's own
    explanation); None when it does not exist or `user` may not see it (both a 404)."""
    try:
        pk = int(request_id)
    except (TypeError, ValueError):
        return None
    request = request_visible_row(request_id=pk, user=user)
    if request is None:
        return None
    return request_detail_of(request=request, user=user)


def request_visible_row(*, request_id: int, user: User) -> ApprovalRequest | None:
    """The request (with requester, type and policy version) if `user` may see it, else
    None (the API answers 404 either way): request_page.request_visible's rule, read in
    plain SQL (api_rows) since every API call on one request starts here."""
    request = request_row(request_id)
    if request is None or not policies.may_view(request, user, read_handoffs=handoffs_rows):
        return None
    return request


def request_detail_of(*, request: ApprovalRequest, user: User) -> RequestDetail:
    """`request_detail` of a request already loaded (with its requester, type and policy
    version) and known to be visible to `user`: four queries (handoffs, decisions,
    revisions, history); the actions come from one evaluation of the policy."""
    # Only who holds it now is shown (and decides the actions): the closed handoffs, which
    # grow with every step, are in the history. Plain SQL (api_rows): the ORM's building of
    # these four statements cost more than the database's answering them.
    open_handoffs = open_handoffs_rows(request)
    decisions = decisions_rows(request)
    revisions = revisions_rows(request)
    options = action_options(request=request, user=user, open_handoffs=open_handoffs, decisions=decisions)
    return RequestDetail(
        request=request,
        open_handoffs=open_handoffs,
        entries=history_rows(request),
        decisions=decisions,
        revisions=revisions,
        options=options,
        why_not=request_why_not(request=request, user=user, open_handoffs=open_handoffs, options=options),
    )
