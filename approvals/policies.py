"""Who may see and submit requests: the reads shared by the lifecycle's checks and the
pages. Pure reads; the service enforces. What each action requires is in its own home
in approvals/lifecycle/."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardian.shortcuts import get_objects_for_user

from accounts.access import object_permissions
from accounts.models import Delegation
from approvals.models import ApprovalRequest, RequestType
from workflows.models import Handoff
from workflows.permissions import holds_handoff, user_group_ids

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from django.db.models import QuerySet

    from accounts.models import User

SUBMIT_TYPE = "submit_requesttype"


def may_submit_type(user: User, request_type: RequestType) -> bool:
    """Submitting a type is an object permission on it (or the same permission globally)."""
    return (
        user.is_active
        and request_type.is_active
        and (
            user.has_perm(f"approvals.{SUBMIT_TYPE}") or SUBMIT_TYPE in object_permissions(user, request_type)
        )
    )


def submittable_types(user: User) -> QuerySet[RequestType]:
    """The active types `user` may submit, by name: the rule of `may_submit_type` as one
    query (guardian's object permissions of the user and their groups, or the global one)."""
    active = RequestType.objects.filter(is_active=True).select_related("current_policy").order_by("name")
    if not user.is_active:
        return active.none()
    return get_objects_for_user(
        user, f"approvals.{SUBMIT_TYPE}", klass=active, accept_global_perms=True
    ).order_by("name")


def is_requester(request: ApprovalRequest, user: User) -> bool:
    return user.is_active and request.requester_id == user.pk


def may_view_all(user: User) -> bool:
    """Managers, auditors and superusers see every request and its history."""
    return user.is_active and user.has_perm("approvals.view_all_approvalrequest")


def may_view(
    request: ApprovalRequest,
    user: User,
    *,
    read_handoffs: Callable[[ApprovalRequest], list[Handoff]] | None = None,
) -> bool:
    """The requester, whoever held, may hold or closed (acted on) one of its handoffs,
    people who see everything, and, while a delegation reaches it, the delegate of someone
    it waits for (`delegators_waiting`): once the delegation ends, so does that view.
    `read_handoffs` reads all of the request's handoffs, only when they are needed (the
    API passes its plain-SQL read); the rule is the same whoever reads them."""
    if not user.is_active:
        return False
    if request.requester_id == user.pk or may_view_all(user):
        return True
    groups = user_group_ids(user)
    handoffs = (
        list(Handoff.objects.for_instance(request)) if read_handoffs is None else read_handoffs(request)
    )
    for handoff in handoffs:
        if (
            handoff.assignee_id == user.pk
            or handoff.candidate_group_id in groups
            or handoff.closed_by_id == user.pk
        ):
            return True
    return bool(delegators_waiting(request, user, handoffs=handoffs))


def delegations_received(user: User) -> list[Delegation]:
    """The delegations to `user` active now, with their delegators (one query)."""
    if not user.is_active:
        return []
    return list(Delegation.objects.active().filter(delegate=user).select_related("delegator").order_by("id"))


def delegators_waiting(
    request: ApprovalRequest,
    user: User,
    *,
    handoffs: Iterable[Handoff],
    delegations: list[Delegation] | None = None,
) -> list[User]:
    """Whom `user` may act for on `request` now: the people who delegated to them in a
    delegation active now that reaches the request's type, and who hold or may claim one of
    its open `handoffs`. Never its requester: nobody acts for them on their own request.

    The same rules the transition service enforces (workflows.permissions.may_act_on_behalf
    and principal_of); `delegations` are `delegations_received(user)`, read if not given.
    """
    received = delegations_received(user) if delegations is None else delegations
    if not received:
        return []
    open_handoffs = [h for h in handoffs if h.is_open]
    scope = request.request_type.slug
    found: dict[int, User] = {}
    for delegation in received:
        delegator = delegation.delegator
        if (
            delegator.pk in found
            or not delegator.is_active
            or delegator.pk == request.requester_id
            or not delegation.covers(scope)
        ):
            continue
        if any(holds_handoff(user=delegator, handoff=h) for h in open_handoffs):
            found[delegator.pk] = delegator
    return list(found.values())


def may_comment(request: ApprovalRequest, user: User) -> bool:
    """Whoever takes part in a request may write on its thread and add files: its requester,
    whoever holds or held one of its handoffs, approvers and managers who may see it.
    Read-only roles (auditors) see the thread but never write on it."""
    if not may_view(request, user):
        return False
    if request.requester_id == user.pk:
        return True
    if user.has_perm("approvals.decide_approvalrequest") or user.has_perm("approvals.cancel_approvalrequest"):
        return True
    groups = user_group_ids(user)
    return any(
        h.assignee_id == user.pk or h.candidate_group_id in groups
        for h in Handoff.objects.for_instance(request)
    )


AUDIT_PERMISSION = "workflows.view_auditentry"


def may_audit(user: User) -> bool:
    """Auditors (and superusers) read the whole audit trail, export it and its evidence.
    Reading only: nothing in the auditors' pages writes, and their role grants no action."""
    return user.is_active and user.has_perm(AUDIT_PERMISSION)


def may_view_evidence(request: ApprovalRequest, user: User) -> bool:
    """A request's evidence page (its history, verified): auditors, and whoever may see the
    request itself (its requester, those who held or may hold it, managers). Nobody sees
    the trail of a request they may not see."""
    return may_audit(user) or may_view(request, user)
