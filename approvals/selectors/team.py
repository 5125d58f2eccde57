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
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from accounts.roles import ROLE_PERMISSIONS
from accounts.teams import everyone_in_teams, team_members
from approvals.selectors import list_sql
from approvals.selectors.inbox import InboxFilter, InboxRow, handoffs_filtered, inbox_rows
from approvals.selectors.list_sql import Where
from workflows.models import Handoff
from workflows.permissions import may_reassign

if TYPE_CHECKING:
    from collections.abc import Callable

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


def _values_in(column: str, values: list[int]) -> tuple[str, ...]:
    condition, params = list_sql.values_in(column, values)
    return (condition, *params)


def _oldest_first(workloads: list[Workload]) -> list[Workload]:
    """Who has waited longest first; those with nothing open after them, by name."""
    return sorted(workloads, key=lambda w: (w.oldest is None, w.oldest or datetime.min, w.label.lower()))


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
        # The same people as a condition of the plain statements below.
        held = Where().add(
            "h.assignee_id IN (SELECT u.id FROM accounts_user u WHERE u.manager_id IS NOT NULL "
            "OR u.id IN (SELECT m.user_id FROM accounts_teammembership m))"
        )
    else:
        # Only what the page shows of each (a user row also carries a password hash and
        # preferences, read 50 times for nothing).
        members = list(
            team_members(user)
            .only("username", "first_name", "last_name", "is_active")
            .order_by("first_name", "last_name", "username")
        )
        team_ids = [m.pk for m in members]
        held = Where().add(*_values_in("h.assignee_id", team_ids))
    # 2. the groups: the members', and those their open items were claimed from (two
    # semi-joins: a join to the memberships needed a DISTINCT over thousands of rows)
    held_from = Handoff.objects.filter(
        content_type_id=list_sql.request_content_type(),
        closed_at__isnull=True,
        assignee_id__in=team_ids,
        candidate_group__isnull=False,
    )
    memberships = User.groups.through.objects.filter(user_id__in=team_ids).values("group_id")
    groups = list(
        Group.objects.filter(
            Q(pk__in=memberships) | Q(pk__in=held_from.values("candidate_group_id"))
        ).order_by("name")
    )
    group_ids = [g.pk for g in groups]

    base = list_sql.open_request_handoffs().also(handoffs_filtered(filters.items, now))
    queued = Where().add("h.assignee_id IS NULL").add(*_values_in("h.candidate_group_id", group_ids))

    # 3. per member and per group (one statement)
    member_counts, group_counts = list_sql.workloads(base, held=held, queued=queued, now=now)

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

    # 4. the page of items with their requests
    if filters.member:
        scope = held.also(
            Where().add(
                "h.assignee_id IN (SELECT u.id FROM accounts_user u WHERE u.username = %s)", filters.member
            )
        )
    elif filters.group:
        scope = list_sql.any_of([held, queued]).also(
            Where().add(
                "h.candidate_group_id IN (SELECT g.id FROM auth_group g WHERE g.name = %s)", filters.group
            )
        )
    else:
        scope = list_sql.any_of([held, queued])
    sort = filters.items.sort
    where = base.also(scope, list_sql.after(sort, cursor) if cursor else Where())
    found = list_sql.page_rows(where, sort=sort, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    return TeamPage(
        members=_oldest_first(member_rows),
        groups=_oldest_first(group_rows),
        rows=inbox_rows(found, now=now),
        filter=filters,
        next_cursor=list_sql.cursor_of(found[-1].handoff, sort) if more and found else "",
        everyone=everyone,
        people=[(m.username, m.display_name) for m in members if m.is_active],
        group_names=[g.name for g in groups],
    )
