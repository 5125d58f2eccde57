"""Delegations as the pages show them: the delegations page's lists, whom someone may set
one up for, and, on a request's page, whom the viewer acts for there (or no longer may).

Each runs a fixed number of queries whatever the number of delegations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from accounts.models import Delegation, DelegationQuerySet, User
from accounts.teams import team_members
from approvals import delegations as rules
from approvals import policies
from approvals.actions import TASK_ACTIONS
from approvals.lifecycle import ActionOption, action_options
from approvals.models import ApprovalRequest, RequestType
from approvals.selectors.inbox import InboxFilter, InboxPage, inbox_page, inbox_reach
from workflows.permissions import holds_handoff

if TYPE_CHECKING:
    from workflows.models import Handoff

PAST_PAGE = 50
OPEN_MAX = 200
# Auditors read every delegation: who let whom act for them, when, set up and ended by whom.
AUDIT_PERMISSION = "workflows.view_auditentry"


def sees_every_delegation(user: User) -> bool:
    return user.is_active and (user.is_superuser or user.has_perm(AUDIT_PERMISSION))


@dataclass(frozen=True)
class DelegationRow:
    """One delegation as the page lists it, with what the viewer may do about it."""

    delegation: Delegation
    status: str  # scheduled | active | ended | revoked
    scope_names: tuple[str, ...]  # empty: every request type
    revocable: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in {"scheduled", "active"}


@dataclass
class DelegationLists:
    open: list[DelegationRow]
    past: list[DelegationRow]
    next_before: int | None = None
    # More open delegations than the page lists (only for people who see every one).
    open_truncated: bool = False
    everyone: bool = False


def delegation_status(delegation: Delegation, now: datetime) -> str:
    if delegation.revoked_at is not None:
        return "revoked"
    if delegation.ends_at is not None and delegation.ends_at <= now:
        return "ended"
    return "active" if delegation.starts_at <= now else "scheduled"


def visible_delegations(user: User) -> DelegationQuerySet:
    """The delegations `user` may read: every one for auditors and superusers; else those
    they gave, received or set up, and those of the people they look after."""
    query = Delegation.objects.select_related("delegator", "delegate", "created_by", "revoked_by")
    if sees_every_delegation(user):
        return query
    return query.filter(
        Q(delegator=user)
        | Q(delegate=user)
        | Q(created_by=user)
        | Q(delegator__in=team_members(user).values("pk"))
    )


def delegation_lists(*, user: User, before_id: int | None = None) -> DelegationLists:
    """The open delegations `user` may read (scheduled or active, soonest to end first) and
    a page of the past ones (newest first, keyset on id). Four queries whatever their
    number: the people `user` looks after, the open ones, the past page, the type names."""
    now = timezone.now()
    visible = visible_delegations(user)
    looked_after = set(team_members(user).values_list("pk", flat=True))
    open_rows = list(visible.open(now).order_by("ends_at", "id")[: OPEN_MAX + 1])
    past_query = visible.filter(Q(revoked_at__isnull=False) | Q(ends_at__lte=now))
    if before_id is not None:
        past_query = past_query.filter(pk__lt=before_id)
    past_rows = list(past_query.order_by("-id")[: PAST_PAGE + 1])
    slugs = {key for d in [*open_rows, *past_rows] for key in d.scope or []}
    names = dict(RequestType.objects.filter(slug__in=slugs).values_list("slug", "name")) if slugs else {}

    def row(d: Delegation, *, revocable: bool = False) -> DelegationRow:
        scope_names = tuple(names.get(key, key) for key in d.scope or [])
        return DelegationRow(
            delegation=d, status=delegation_status(d, now), scope_names=scope_names, revocable=revocable
        )

    shown_past = past_rows[:PAST_PAGE]
    return DelegationLists(
        open=[
            row(d, revocable=rules.may_revoke(user, d, looked_after=looked_after))
            for d in open_rows[:OPEN_MAX]
        ],
        past=[row(d) for d in shown_past],
        next_before=shown_past[-1].pk if len(past_rows) > PAST_PAGE else None,
        open_truncated=len(open_rows) > OPEN_MAX,
        everyone=sees_every_delegation(user),
    )


def delegators_for(user: User) -> list[User]:
    """The people `user` may set up a delegation for, themselves first: the active people
    they look after (superusers may name anyone; the form takes a user name from them)."""
    if not user.is_active:
        return []
    return [user, *team_members(user).filter(is_active=True).order_by("first_name", "last_name", "username")]


def delegation_for_revoke(*, delegation_id: int, user: User) -> DelegationRow | None:
    """One delegation `user` may read, with whether they may revoke it; None when they may
    not read it (the page answers 404 then)."""
    found = visible_delegations(user).filter(pk=delegation_id).first()
    if found is None:
        return None
    now = timezone.now()
    names = dict(RequestType.objects.filter(slug__in=found.scope or []).values_list("slug", "name"))
    return DelegationRow(
        delegation=found,
        status=delegation_status(found, now),
        scope_names=tuple(names.get(key, key) for key in found.scope or []),
        revocable=rules.may_revoke(user, found),
    )


def waiting_for_delegators(user: User, *, limit: int = 20) -> InboxPage | None:
    """What waits now for the people `user` stands in for, as far as each delegation
    reaches (the inbox's delegated view, soonest due first); None when nobody delegated
    to them. Five queries: their roles, the delegations, the page, its requests, counts."""
    reach = inbox_reach(user)
    if not reach.delegators:
        return None
    return inbox_page(user=user, filters=InboxFilter(view="delegated"), reach=reach, limit=limit)


def person_named(username: str) -> User | None:
    """The person with this user name (active or not), or None."""
    return User.objects.filter(username=username).first() if username else None


# --- on a request's page ------------------------------------------------------------------


@dataclass(frozen=True)
class ActingFor:
    """Someone the viewer may act for on this request now, and the actions open to them."""

    delegator: User
    delegation: Delegation
    options: list[ActionOption]

    @property
    def actions(self) -> list[ActionOption]:
        """What the viewer may do here for the delegator (tasks aside: those are done by
        their holders from their own task form)."""
        return [o for o in self.options if o.allowed and o.action not in TASK_ACTIONS]


@dataclass(frozen=True)
class DelegationGone:
    """A delegation to the viewer, from someone this request waits for, that does not
    count now: it ended or was revoked (`ended_at`), or has not started (`starts_at`)."""

    delegator: User
    delegation: Delegation
    ended_at: datetime | None = None
    starts_at: datetime | None = None


@dataclass
class RequestDelegations:
    acting: list[ActingFor] = field(default_factory=list)
    gone: list[DelegationGone] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.acting or self.gone)


def request_delegations(
    *, request: ApprovalRequest, user: User, open_handoffs: list[Handoff]
) -> RequestDelegations:
    """Whom `user` acts for on `request` now (policies.delegators_waiting: the delegation is
    active and reaches the request's type, the delegator holds or may claim one of its open
    handoffs and is not its requester), each with what they may do for them; and the
    delegations from such people that count no more (or not yet), so the page can say so.

    Two queries (the delegations to `user`: active, and the latest others), plus per
    delegator what their rights and the request's decisions need.
    """
    found = RequestDelegations()
    if not user.is_active or not open_handoffs:
        return found
    received = policies.delegations_received(user)
    waiting = policies.delegators_waiting(request, user, handoffs=open_handoffs, delegations=received)
    by_delegator = {d.delegator_id: d for d in received}
    for delegator in waiting:
        options = action_options(
            request=request, user=user, open_handoffs=open_handoffs, on_behalf_of=delegator
        )
        found.acting.append(
            ActingFor(delegator=delegator, delegation=by_delegator[delegator.pk], options=options)
        )
    now = timezone.now()
    acting_ids = {a.delegator.pk for a in found.acting}
    others = (
        Delegation.objects.filter(delegate=user)
        .exclude(pk__in=[d.pk for d in received])
        .exclude(delegator_id__in=acting_ids)
        .exclude(delegator_id=request.requester_id)
        .select_related("delegator")
        .order_by("-id")[:20]
    )
    seen: set[int] = set()
    scope = request.request_type.slug
    for delegation in others:
        delegator = delegation.delegator
        if delegator.pk in seen or not delegation.covers(scope):
            continue
        if not any(holds_handoff(user=delegator, handoff=h) for h in open_handoffs):
            continue
        seen.add(delegator.pk)
        ended = delegation.ended_at(now)
        found.gone.append(
            DelegationGone(
                delegator=delegator,
                delegation=delegation,
                ended_at=ended,
                starts_at=delegation.starts_at if ended is None else None,
            )
        )
    return found
