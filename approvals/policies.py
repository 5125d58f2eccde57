"""Who may do what to an approval request. Pure reads: the service enforces them.

These are the django-fsm `permission` callables of ApprovalRequest's transitions, so
`has_transition_perm` answers with them, and the pages use them to offer actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.models import Handoff
from workflows.permissions import holds_handoff, open_handoffs, user_group_ids

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from accounts.models import User
    from approvals.models import ApprovalRequest, RequestType


def may_submit_type(user: User, request_type: RequestType) -> bool:
    """Submitting a type is an object permission on it (or the same permission globally)."""
    perm = "approvals.submit_requesttype"
    return (
        user.is_active
        and request_type.is_active
        and (user.has_perm(perm) or user.has_perm(perm, request_type))
    )


def submittable_types(user: User) -> QuerySet[RequestType]:
    """The active types `user` may submit, by name: the rule of `may_submit_type` as one
    query (guardian's object permissions of the user and their groups, or the global one)."""
    # Imported here: this module is loaded while the models are (they use its rules).
    from guardian.shortcuts import get_objects_for_user

    from approvals.models import RequestType

    active = RequestType.objects.filter(is_active=True).select_related("current_policy").order_by("name")
    if not user.is_active:
        return active.none()
    return get_objects_for_user(
        user, "approvals.submit_requesttype", klass=active, accept_global_perms=True
    ).order_by("name")


def is_requester(request: ApprovalRequest, user: User) -> bool:
    return user.is_active and request.requester_id == user.pk


def may_submit(request: ApprovalRequest, user: User) -> bool:
    return is_requester(request, user) and may_submit_type(user, request.request_type)


def may_decide(request: ApprovalRequest, user: User) -> bool:
    """An approver decides when they hold an open handoff of the request's current stage.

    Separation of duties: a requester never decides on their own request, and one person
    decides once per revision (once per stage where the policy allows more).
    """
    if not user.is_active or request.requester_id == user.pk:
        return False
    if not user.has_perm("approvals.decide_approvalrequest"):
        return False
    if not any(holds_handoff(user=user, handoff=h) for h in open_handoffs(request)):
        return False
    return not already_decided(request, user)


def already_decided(request: ApprovalRequest, user: User) -> bool:
    """Whether `user` has already had their say where the policy allows only one."""
    from approvals.stages import deciders_this_revision

    policy, stage = request.policy, request.current_stage
    scope = None if policy is None or stage is None or policy.one_decision_per_person else stage.name
    return user.pk in deciders_this_revision(request, stage_name=scope)


def may_move_policy(request: ApprovalRequest, user: User) -> bool:
    """Moving a request to another policy version is an administrator's explicit step."""
    return user.is_active and user.is_superuser


def may_cancel(request: ApprovalRequest, user: User) -> bool:
    return user.is_active and user.has_perm("approvals.cancel_approvalrequest")


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


def forbidden_reason(request: ApprovalRequest, *, name: str, user: User | None) -> str:
    """Tell the person plainly why they may not take `name` on `request`."""
    if user is None or not user.is_active:
        return "Your account is not active."
    if name in {"approve", "reject", "request_changes"}:
        if request.requester_id == user.pk:
            return "You cannot decide on your own request."
        if not user.has_perm("approvals.decide_approvalrequest"):
            return "You are not an approver."
        if already_decided(request, user):
            return "You have already decided on this request."
        return "This request is not waiting for you."
    if name == "submit" and request.requester_id == user.pk:
        return f"You may not submit {request.request_type} requests."
    if name in {"submit", "resubmit", "withdraw"}:
        return "Only the requester can do this."
    if name == "cancel":
        return "Only a manager can cancel a request."
    if name == "move_policy":
        return "Only an administrator can move a request to another policy version."
    return "You may not do this."
