"""Who may do what to handoffs and on whose behalf. Pure reads; the service enforces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import models

from accounts.models import Delegation
from workflows.models import Handoff

if TYPE_CHECKING:
    from accounts.models import User

# Where the transition service leaves the open handoffs it loaded under the row lock.
_OPEN_HANDOFFS = "_workflow_open_handoffs"


def may_act_on_behalf(*, actor: User, principal: User) -> bool:
    """True when `principal` has an active delegation to `actor` (out of office)."""
    if actor.pk == principal.pk:
        return True
    return Delegation.objects.active().filter(delegator=principal, delegate=actor).exists()


def user_group_ids(user: User) -> set[int]:
    """The ids of the groups `user` belongs to, cached on the user object for this request."""
    cached: set[int] | None = getattr(user, "_baton_group_ids", None)
    if cached is None:
        # The membership table alone holds the ids: no join with the groups themselves.
        memberships = user.groups.through.objects.filter(user_id=user.pk)
        cached = set(memberships.values_list("group_id", flat=True))
        user._baton_group_ids = cached  # type: ignore[attr-defined]
    return cached


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


def open_handoffs(instance: models.Model) -> list[Handoff]:
    """The open handoffs of `instance`.

    Inside the transition service's permission check these are the ones it has just
    loaded with the instance's row locked (one query instead of one per check);
    anywhere else they are read from the database.
    """
    known: list[Handoff] | None = getattr(instance, _OPEN_HANDOFFS, None)
    if known is not None:
        return list(known)
    return list(Handoff.objects.for_instance(instance).open())


@contextmanager
def open_handoffs_known(instance: models.Model, handoffs: list[Handoff]) -> Iterator[None]:
    """Let `open_handoffs(instance)` answer with `handoffs` while the caller holds the row lock.

    Only for the span of a check: once handoffs change, the list would be stale.
    """
    setattr(instance, _OPEN_HANDOFFS, handoffs)
    try:
        yield
    finally:
        delattr(instance, _OPEN_HANDOFFS)
