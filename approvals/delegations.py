"""Out of office: delegations set up and ended, and who may do either.

While a delegation is active its delegate acts for its delegator on the request types it
lists (all, when it lists none), and every such action records both people. What a
delegation lets someone do is the engine's rule (workflows.permissions.may_act_on_behalf,
workflows.services.common.principal_of): it never chains, it never reaches the delegator's
own requests, and it gives nothing before its start, after its end or once revoked.

Who may set one up: the delegator themselves; a manager of theirs (their line manager,
or a manager of a team they belong to); a superuser. Who may end one early: its
delegator, whoever set it up, a manager of the delegator, a superuser.

Each delegation keeps who set it up and when, and who revoked it and when; the delegations
page lists them to the people concerned, and every one to auditors.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from accounts.models import Delegation
from accounts.teams import manages
from approvals.models import RequestType
from workflows import errors

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from accounts.models import User

REASON_MAX = 200
SCOPE_MAX = 50

log = logging.getLogger(__name__)


def may_delegate_for(actor: User, delegator: User) -> bool:
    """Whether `actor` may set up a delegation of `delegator`'s work: their own, a team
    member's or direct report's (as their manager), anyone's (as a superuser)."""
    if not actor.is_active:
        return False
    return actor.pk == delegator.pk or actor.is_superuser or manages(manager=actor, member=delegator)


def may_revoke(actor: User, delegation: Delegation, *, looked_after: Collection[int] | None = None) -> bool:
    """Whether `actor` may end `delegation` early: its delegator, whoever set it up, a
    manager of the delegator, or a superuser. `looked_after`: the ids of the people
    `actor` manages (accounts.teams.team_members), when the caller has read them."""
    if not actor.is_active:
        return False
    if actor.is_superuser or actor.pk in {delegation.delegator_id, delegation.created_by_id}:
        return True
    if looked_after is not None:
        return delegation.delegator_id in looked_after
    return manages(manager=actor, member=delegation.delegator)


def _scope_clean(scope: Iterable[str]) -> tuple[list[str], list[str]]:
    """The slugs without repeats, sorted; and the problems with them."""
    keys = sorted({str(key).strip() for key in scope if str(key).strip()})
    if len(keys) > SCOPE_MAX:
        return keys, [f"At most {SCOPE_MAX} request types (got {len(keys)}); or choose all of them."]
    known = set(RequestType.objects.filter(slug__in=keys, is_active=True).values_list("slug", flat=True))
    unknown = [key for key in keys if key not in known]
    if unknown:
        return keys, [f"Unknown request type{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}."]
    return keys, []


def delegation_create(
    *,
    actor: User,
    delegator: User,
    delegate: User,
    starts_at: datetime,
    ends_at: datetime,
    scope: Iterable[str] = (),
    reason: str = "",
) -> Delegation:
    """Let `delegate` act for `delegator` from `starts_at` until `ends_at`, on the request
    types whose slugs `scope` lists (none: every type), recorded as set up by `actor`.

    Preconditions checked here: an active delegator and delegate, not the same person; an
    end after the start and after now; known, active request types; a reason of at most
    REASON_MAX characters (InvalidInput, naming each field: delegator, delegate,
    starts_at, ends_at, scope, reason). Then that `actor` may set up the delegator's
    delegations (Forbidden, on the field delegator).
    Side effects: the delegation row (created_by, created_at) and a log line. It takes
    effect at its start: nothing else changes hands.
    """
    now = timezone.now()
    field_errors: dict[str, list[str]] = {}
    if not delegator.is_active:
        field_errors["delegator"] = [f"{delegator} is not an active user."]
    if delegate.pk == delegator.pk:
        field_errors["delegate"] = ["Choose someone else: a delegation goes to another person."]
    elif not delegate.is_active:
        field_errors["delegate"] = [f"{delegate} is not an active user."]
    if ends_at <= starts_at:
        field_errors["ends_at"] = ["The end must come after the start."]
    elif ends_at <= now:
        field_errors["ends_at"] = ["The end is in the past: a delegation must end in the future."]
    keys, scope_problems = _scope_clean(scope)
    if scope_problems:
        field_errors["scope"] = scope_problems
    clean_reason = (reason or "").strip()
    if len(clean_reason) > REASON_MAX:
        field_errors["reason"] = [f"At most {REASON_MAX} characters (got {len(clean_reason)})."]
    if field_errors:
        raise errors.InvalidInput("The delegation is incomplete.", field_errors=field_errors)
    if not may_delegate_for(actor, delegator):
        message = f"You may not set up delegations for {delegator}: only they, their manager or an administrator may."
        raise errors.Forbidden(message, field_errors={"delegator": [message]})
    delegation = Delegation.objects.create(
        delegator=delegator,
        delegate=delegate,
        starts_at=starts_at,
        ends_at=ends_at,
        scope=keys,
        reason=clean_reason,
        created_by=actor,
    )
    log.info(
        "delegation %s created by %s: %s to %s from %s until %s, scope %s",
        delegation.pk,
        actor.pk,
        delegator.pk,
        delegate.pk,
        starts_at.isoformat(),
        ends_at.isoformat(),
        keys or "all",
    )
    return delegation


def delegation_revoke(*, actor: User, delegation_id: int) -> Delegation:
    """End a delegation now: from this moment its delegate acts for nobody under it (the
    engine checks the delegation on every action, so nothing the delegate has open keeps
    working).

    Locks the delegation's row. Raises NotFound, Forbidden (see `may_revoke`), and
    TransitionNotAllowed when it already ended or was revoked.
    Side effects: revoked_at and revoked_by set, and a log line.
    """
    with transaction.atomic():
        delegation = (
            Delegation.objects.select_for_update(of=("self",))
            .select_related("delegator", "delegate")
            .filter(pk=delegation_id)
            .first()
        )
        if delegation is None:
            raise errors.NotFound(f"Delegation {delegation_id} does not exist.")
        if not may_revoke(actor, delegation):
            raise errors.Forbidden(
                "Only the person who delegated, whoever set it up, their manager or an administrator "
                "can revoke this delegation."
            )
        now = timezone.now()
        ended = delegation.ended_at(now)
        if ended is not None:
            raise errors.TransitionNotAllowed(
                f"This delegation already ended on {timezone.localtime(ended):%Y-%m-%d %H:%M}."
            )
        delegation.revoked_at, delegation.revoked_by = now, actor
        delegation.save(update_fields=["revoked_at", "revoked_by"])
    log.info("delegation %s revoked by %s", delegation.pk, actor.pk)
    return delegation
