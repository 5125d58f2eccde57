"""The team view: what waits for the people a manager looks after and for their groups,
per member and per group (open, overdue, waiting since), and the items themselves, with
the inbox's filters, oldest first by default, paged by keyset.

The team: the members of the teams the viewer manages and their direct reports
(accounts.teams.team_members). A superuser looks after every team: everyone in a team or
with a line manager; their member list shows only the people with something open, so it
stays short whatever the size of the organisation.
The groups: those the team's members belong to, and those the team's open items were
claimed from; a role group (e.g. requesters) is listed only while work waits in it.

A fixed number of queries whatever the page size or the data size (tests pin it): the
members, the groups, the per-member and per-group counts (one UNION ALL), the page of handoffs, their
requests (and the viewer's roles, read once per request by the permission check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib.auth.models import Group
from django.db.models import BooleanField, CharField, Count, F, Min, Q, QuerySet, Value
from django.utils import timezone

from accounts.models import User
from accounts.roles import ROLE_PERMISSIONS
from accounts.teams import everyone_in_teams, team_members
from approvals.selectors.inbox import (
    InboxFilter,
    InboxRow,
    cursor_of,
    handoff_order,
    handoffs_after,
    handoffs_filtered,
    handoffs_page,
    inbox_rows,
    open_request_handoffs,
)
from workflows.permissions import may_reassign

if TYPE_CHECKING:
    from collections.abc import Callable

    from workflows.models import Handoff

REASSIGN_PERMISSION = "workflows.reassign_handoff"


def may_see_team(user: User) -> bool:
    """Managers (who may reassign work) and superusers see their team's workload."""
    return user.is_active and user.has_perm(REASSIGN_PERMISSION)


def reassignable_handoffs(*, handoffs: list[Handoff], user: User) -> list[Handoff]:
    """Those of `handoffs` (a request's) `user` may hand on: any open one for a manager,
    their own for its holder (workflows.permissions.may_reassign)."""
    return [h for h in handoffs if may_reassign(user=user, handoff=h)]


@dataclass(frozen=True)
class TeamFilter:
    """The inbox's filters (`items`), and whose items: one member's (by user name) or
    one group's queue (by name); neither: the whole team's."""

    items: InboxFilter = field(default_factory=lambda: InboxFilter(sort="oldest"))
    member: str = ""
    group: str = ""

    def query(self, **changes: Any) -> str:
        """This filter as a query string for links, with `changes` applied (defaults left out)."""
        values = _query_values(self, **changes)
        return urlencode({k: v for k, v in values.items() if v})


def _query_values(filters: TeamFilter, **changes: Any) -> dict[str, Any]:
    """The filter's values in the order its query string lists them (the default sort
    left out), with `changes` applied; keys kept even when empty (for `_links`)."""
    values = {
        **{k: v for k, v in filters.items.__dict__.items() if k != "view"},
        "member": filters.member,
        "group": filters.group,
        **changes,
    }
    return {k: ("" if (k, v) == ("sort", "oldest") else v) for k, v in values.items()}


@dataclass(frozen=True)
class Workload:
    """What waits for one member (assigned to them) or one group (unclaimed in its queue)."""

    key: str  # user name or group name, as the filter takes it
    label: str
    open: int = 0
    overdue: int = 0
    oldest: datetime | None = None
    active: bool = True
    query: str = ""  # the team view's query string showing only these items


@dataclass
class TeamPage:
    members: list[Workload]
    groups: list[Workload]
    rows: list[InboxRow]
    filter: TeamFilter
    next_cursor: str = ""
    everyone: bool = False
    # Who the team's items may go to: its active members and its groups (for the form).
    people: list[tuple[str, str]] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)

    @property
    def total_open(self) -> int:
        return sum(w.open for w in self.members) + sum(w.open for w in self.groups)

    @property
    def total_overdue(self) -> int:
        return sum(w.overdue for w in self.members) + sum(w.overdue for w in self.groups)


def _links(filters: TeamFilter) -> Callable[..., str]:
    """`filters.query(member=…, group=…)` for one member or group at a time, the other
    filters encoded once: the team view links a hundred and more members and groups per
    page (urlencode of every filter per link was 3% of its CPU, profiled). Same text:
    the pairs in the same order, each encoded as urlencode encodes it."""
    fixed = {k: urlencode({k: v}) if v else "" for k, v in _query_values(filters).items()}

    def link(*, member: str = "", group: str = "") -> str:
        whose = {"member": member, "group": group}
        parts = (
            (urlencode({k: whose[k]}) if whose[k] else "") if k in whose else v for k, v in fixed.items()
        )
        return "&".join(p for p in parts if p)

    return link


def _oldest_first(workloads: list[Workload]) -> list[Workload]:
    """Who has waited longest first; those with nothing open after them, by name."""
    return sorted(workloads, key=lambda w: (w.oldest is None, w.oldest or datetime.min, w.label.lower()))


def _counts(
    base: QuerySet[Handoff], *, held: Q, queued: Q, now: datetime
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Open, overdue and oldest per member (with their names: a superuser's list is made
    from these) and per group, in one statement: the two groupings in a UNION ALL."""
    measures = {
        "open": Count("id"),
        "overdue": Count("id", filter=Q(due_at__lt=now)),
        "oldest": Min("opened_at"),
    }
    per_member = (
        base.filter(held)
        .values(
            kind=Value("member"),
            key=F("assignee_id"),
            username=F("assignee__username"),
            first_name=F("assignee__first_name"),
            last_name=F("assignee__last_name"),
            is_active=F("assignee__is_active"),
        )
        .annotate(**measures)
        .order_by()
    )
    per_group = (
        base.filter(queued)
        .values(
            kind=Value("group"),
            key=F("candidate_group_id"),
            username=Value(None, output_field=CharField()),
            first_name=Value(None, output_field=CharField()),
            last_name=Value(None, output_field=CharField()),
            is_active=Value(None, output_field=BooleanField()),
        )
        .annotate(**measures)
        .order_by()
    )
    rows: list[dict[str, Any]] = [dict(r) for r in per_member.union(per_group, all=True)]
    return [r for r in rows if r["kind"] == "member"], {r["key"]: r for r in rows if r["kind"] == "group"}


def team_page(
    *, user: User, filters: TeamFilter | None = None, cursor: str = "", limit: int = 50
) -> TeamPage:
    """The workload of the people `user` looks after and of their groups, and one page of
    their items, as `filters` narrow them. The caller checks `may_see_team`."""
    filters = filters or TeamFilter()
    everyone = user.is_superuser
    now = timezone.now()
    # 1. the members (a superuser's: only those with work open, from the counts below).
    # A manager's team is read once and its ids passed on as a list: as a subquery it was
    # worked out again (a scan of every user) by each of the four queries below.
    team_ids: Any  # the ids (a list), or for a superuser a subquery
    if everyone:
        members: list[User] = []
        team_ids = everyone_in_teams().values("pk")
    else:
        # Only what the page shows of each (a user row also carries a password hash and
        # preferences, read 50 times for nothing).
        members = list(
            team_members(user)
            .only("username", "first_name", "last_name", "is_active")
            .order_by("first_name", "last_name", "username")
        )
        team_ids = [m.pk for m in members]
    # 2. the groups: the members', and those their open items were claimed from (two
    # semi-joins: a join to the memberships needed a DISTINCT over thousands of rows)
    held_from = open_request_handoffs().filter(assignee_id__in=team_ids, candidate_group__isnull=False)
    memberships = User.groups.through.objects.filter(user_id__in=team_ids).values("group_id")
    groups = list(
        Group.objects.filter(
            Q(pk__in=memberships) | Q(pk__in=held_from.values("candidate_group_id"))
        ).order_by("name")
    )
    group_ids = [g.pk for g in groups]

    base = handoffs_filtered(open_request_handoffs(), filters.items, now)
    held = Q(assignee_id__in=team_ids)
    queued = Q(assignee__isnull=True, candidate_group_id__in=group_ids)

    # 3. per member and per group (one statement)
    member_counts, group_counts = _counts(base, held=held, queued=queued, now=now)

    by_member = {row["key"]: row for row in member_counts}
    link = _links(filters)
    member_rows: list[Workload] = []
    if everyone:
        for row in member_counts:
            full = f"{row['first_name']} {row['last_name']}".strip()
            member_rows.append(
                Workload(
                    key=row["username"],
                    label=full or row["username"],
                    open=row["open"],
                    overdue=row["overdue"],
                    oldest=row["oldest"],
                    active=row["is_active"],
                    query=link(member=row["username"]),
                )
            )
    else:
        for member in members:
            counted = by_member.get(member.pk, {})
            member_rows.append(
                Workload(
                    key=member.username,
                    label=member.display_name,
                    open=counted.get("open", 0),
                    overdue=counted.get("overdue", 0),
                    oldest=counted.get("oldest"),
                    active=member.is_active,
                    query=link(member=member.username),
                )
            )
    role_groups = set(ROLE_PERMISSIONS)
    group_rows = [
        Workload(
            key=g.name,
            label=g.name,
            open=group_counts.get(g.pk, {}).get("open", 0),
            overdue=group_counts.get(g.pk, {}).get("overdue", 0),
            oldest=group_counts.get(g.pk, {}).get("oldest"),
            query=link(group=g.name),
        )
        for g in groups
        if g.name not in role_groups or g.pk in group_counts
    ]

    # 4. the page of items, 5. their requests
    if filters.member:
        scope = held & Q(assignee__username=filters.member)
    elif filters.group:
        scope = (held | queued) & Q(candidate_group__name=filters.group)
    else:
        scope = held | queued
    query = base.filter(scope)
    if cursor:
        query = handoffs_after(query, filters.items, cursor)
    _, order = handoff_order(filters.items)
    handoffs = handoffs_page(query, order, limit + 1)
    more = len(handoffs) > limit
    handoffs = handoffs[:limit]
    return TeamPage(
        members=_oldest_first(member_rows),
        groups=_oldest_first(group_rows),
        rows=inbox_rows(handoffs, now=now),
        filter=filters,
        next_cursor=cursor_of(handoffs[-1], filters.items) if more and handoffs else "",
        everyone=everyone,
        people=[(m.username, m.display_name) for m in members if m.is_active],
        group_names=[g.name for g in groups],
    )
