"""Who may do what to handoffs and on whose behalf. Pure reads; the service enforces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accounts.access import user_access
from accounts.models import Delegation
from workflows.models import Handoff

if TYPE_CHECKING:
    from accounts.models import User


def may_act_on_behalf(*, actor: User, principal: User, scope: str | None = None) -> bool:
    """True when `principal` has an active delegation to `actor` (out of office) that
    reaches items of scope key `scope` (a delegation of everything reaches any item).

    Only the principal's own delegations count: a delegation never chains (Maria to Alex
    and Alex to Bob does not let Bob act for Maria). An inactive principal delegates nothing.
    """
    if actor.pk == principal.pk:
        return True
    if not principal.is_active:
        return False
    delegations = Delegation.objects.active().filter(delegator=principal, delegate=actor)
    return any(d.covers(scope) for d in delegations.only("scope"))


def user_group_ids(user: User) -> frozenset[int]:
    """The ids of the groups `user` belongs to (read with their permissions, cached per request)."""
    return user_access(user).group_ids


def holds_handoff(*, user: User, handoff: Handoff) -> bool:
    """True when `user` holds `handoff` now: assigned to them, or offered to a group of
    theirs and not yet claimed by someone else."""
    if not handoff.is_open or not user.is_active:
        return False
    if handoff.assignee_id is not None:
        return handoff.assignee_id == user.pk
    return handoff.candidate_group_id in user_group_ids(user)


def may_claim(*, user: User, handoff: Handoff) -> bool:
    return (
        handoff.is_open
        and user.is_active
        and handoff.assignee_id is None
        and handoff.candidate_group_id in user_group_ids(user)
    )


def may_reassign(*, user: User, handoff: Handoff) -> bool:
    """Managers (role permission) reassign anything; a holder may pass on their own handoff."""
    if not user.is_active or not handoff.is_open:
        return False
    if user.has_perm("workflows.reassign_handoff"):
        return True
    return handoff.assignee_id == user.pk
