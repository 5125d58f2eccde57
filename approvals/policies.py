"""Who may see and submit requests: the reads shared by the lifecycle's checks and the
pages. Pure reads; the service enforces. What each action requires is in its own home
in approvals/lifecycle/."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardian.shortcuts import get_objects_for_user

from accounts.access import object_permissions
from approvals.models import ApprovalRequest, RequestType
from workflows.models import Handoff
from workflows.permissions import user_group_ids

if TYPE_CHECKING:
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


def may_view(request: ApprovalRequest, user: User) -> bool:
    """The requester, whoever held or may hold one of its handoffs, and people who see everything."""
    if not user.is_active:
        return False
    if request.requester_id == user.pk or may_view_all(user):
        return True
    groups = user_group_ids(user)
    for handoff in Handoff.objects.for_instance(request):
        if handoff.assignee_id == user.pk or handoff.candidate_group_id in groups:
            return True
    return False


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
