"""The inbox: what waits for a person — assigned to them, offered to their groups, or held
by someone who delegated their work to them — filtered, searched, sorted and paged by
keyset, with the counts the navigation shows.

A fixed number of queries whatever the page size or the data size (tests pin it;
bench/inbox measures it on a million requests): the person's groups and delegators, the
page of handoffs with their requests, and the counts; the last two in plain SQL
(approvals.selectors.list_sql, which the team view shares for the same filters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.utils import timezone

from accounts.models import User
from accounts.roles import ROLE_PERMISSIONS
from approvals.selectors import list_sql
from approvals.selectors.list_sql import DUE_SOON, Where
from workflows.permissions import user_group_ids

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from approvals.models import ApprovalRequest
    from workflows.models import Handoff

SORTS = ("due", "oldest", "newest")
# "snoozed": the viewer's own items put aside until a follow-up time (left out of the others).
VIEWS = ("all", "mine", "queue", "delegated", "snoozed")
DUES = ("overdue", "soon", "none")
# Role groups carry permissions, not work: no queue is named after them.
ROLE_GROUPS = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox shows: whose items (`view`), which, how sorted."""

    view: str = "all"
    request_type: str = ""  # slug
    group: str = ""  # the name of the group an item is offered to
    stage: str = ""
    requester: str = ""  # user name
    due: str = ""
    q: str = ""
    sort: str = "due"

    def query(self, **changes: Any) -> str:
        """This filter as a query string (for links, saved views), with `changes` applied;
        defaults left out."""
        values = {**self.__dict__, **changes}
        defaults = {("view", "all"), ("sort", "due")}
        return urlencode({k: v for k, v in values.items() if v and (k, v) not in defaults})


@dataclass(frozen=True)
class InboxRow:
    handoff: Handoff
    request: ApprovalRequest
    overdue: bool = False
    due_soon: bool = False
    # Whose item this is when it waits for someone who delegated their work to the viewer.
    on_behalf_of: User | None = None

    @property
    def stage(self) -> str:
        return "changes requested" if self.handoff.stage == "changes" else self.handoff.stage

    @property
    def claimable(self) -> bool:
        return self.handoff.assignee_id is None


@dataclass(frozen=True)
class InboxCounts:
    mine: int = 0
    queue: int = 0
    delegated: int = 0
    overdue: int = 0
    snoozed: int = 0

    @property
    def total(self) -> int:
        return self.mine + self.queue + self.delegated


@dataclass
class InboxPage:
    rows: list[InboxRow]
    counts: InboxCounts
    next_cursor: str = ""
    filter: InboxFilter = field(default_factory=InboxFilter)


@dataclass(frozen=True)
class Reach:
    """Whose items a person may see in their inbox: their own, their groups', and those of
    the people who delegated to them now, as far as each delegation reaches (`scopes`:
    the request type slugs per delegator; None: every type)."""

    user: User
    group_ids: frozenset[int]
    delegators: dict[int, User]
    scopes: dict[int, frozenset[str] | None] = field(default_factory=dict)

    def holders(self, view: str = "all") -> Where:
        """Whose open handoffs `view` shows (all: every one the person may see)."""
        mine = Where().add("h.assignee_id = %s", self.user.pk)
        if view in ("mine", "snoozed"):
            return mine
        groups, params = list_sql.values_in("h.candidate_group_id", sorted(self.group_ids))
        queue = Where().add("h.assignee_id IS NULL").add(groups, *params)
        if view == "queue":
            return queue
        if view == "delegated":
            return self.delegated
        return list_sql.any_of([mine, queue, self.delegated])

    @cached_property
    def delegated(self) -> Where:
        """What waits for each delegator, of the types their delegation reaches, never a
        request of their own (nobody acts for a requester on it): as the service rules.
        Made once per reach (a page reads it twice: its rows and its counts)."""
        return list_sql.any_of([list_sql.held_for(d, self.scopes.get(d)) for d in self.delegators])


def inbox_reach(user: User) -> Reach:
    """One statement for the delegations (the groups come with the person's permissions)."""
    delegators: dict[int, User] = {}
    scopes: dict[int, frozenset[str] | None] = {}
    for delegator, scope in list_sql.delegations_to(user.pk, now=timezone.now()):
        delegators[delegator.pk] = delegator
        # Two delegations from one person reach what either reaches; one of everything, all.
        known = scopes.get(delegator.pk, frozenset())
        scopes[delegator.pk] = None if known is None or not scope else known | set(scope)
    return Reach(user=user, group_ids=user_group_ids(user), delegators=delegators, scopes=scopes)


def handoffs_filtered(filters: InboxFilter, now: datetime) -> Where:
    """The filter's group, stage, due date, type, requester and search text as conditions
    on open handoffs (the team view offers the same filters)."""
    return list_sql.filtered(
        request_type=filters.request_type,
        group=filters.group,
        stage=filters.stage,
        requester=filters.requester,
        due=filters.due,
        q=filters.q,
        now=now,
    )


def inbox_counts(reach: Reach, *, now: datetime | None = None) -> InboxCounts:
    """How many items wait: assigned, in the queues, held for delegators, and overdue (one query)."""
    moment = now or timezone.now()
    active = list_sql.awake(moment)
    # The rows are those the person may see (the delegations' rules included); among them,
    # a delegator's item is one held by a delegator (nobody delegates to themselves: a
    # check constraint), so the count's own filter need not repeat the rules' subqueries.
    delegators, params = list_sql.values_in("h.assignee_id", sorted(reach.delegators))
    found = list_sql.counts(
        list_sql.open_request_handoffs().also(reach.holders()),
        {
            "mine": reach.holders("mine").also(active),
            "queue": reach.holders("queue").also(active),
            "delegated": Where().add(delegators, *params).also(active),
            "overdue": Where().add("h.due_at < %s", list_sql.moment(moment)).also(active),
            "snoozed": reach.holders("mine").also(list_sql.asleep(moment)),
        },
    )
    return InboxCounts(**found)


def inbox_page(
    *,
    user: User,
    filters: InboxFilter | None = None,
    cursor: str = "",
    limit: int = 50,
    reach: Reach | None = None,
) -> InboxPage:
    """One page of the inbox of `user` with its counts (two statements, after the reach's)."""
    filters = filters or InboxFilter()
    reach = reach or inbox_reach(user)
    now = timezone.now()
    where = list_sql.open_request_handoffs().also(
        reach.holders(filters.view),
        list_sql.asleep(now) if filters.view == "snoozed" else list_sql.awake(now),
        handoffs_filtered(filters, now),
        list_sql.after(filters.sort, cursor) if cursor else Where(),
    )
    found = list_sql.page_rows(where, sort=filters.sort, limit=limit + 1)
    more = len(found) > limit
    found = found[:limit]
    return InboxPage(
        rows=inbox_rows(found, now=now, delegators=reach.delegators),
        counts=inbox_counts(reach, now=now),
        next_cursor=list_sql.cursor_of(found[-1].handoff, filters.sort) if more and found else "",
        filter=filters,
    )


def inbox_rows(
    found: Iterable[list_sql.Row], *, now: datetime, delegators: Mapping[int, User] | None = None
) -> list[InboxRow]:
    """The page's handoffs with their requests (those whose request is gone left out),
    due flags, and whose they are when they wait for one of `delegators` (who delegated
    their work to the viewer)."""
    delegators = delegators or {}
    rows = []
    for row in found:
        if row.request is None:
            continue
        due = row.handoff.due_at
        holder = row.handoff.assignee_id
        rows.append(
            InboxRow(
                handoff=row.handoff,
                request=row.request,
                overdue=due is not None and due < now,
                due_soon=due is not None and now <= due < now + DUE_SOON,
                on_behalf_of=delegators.get(holder) if holder else None,
            )
        )
    return rows


@dataclass(frozen=True)
class ViewLink:
    """A saved view as the inbox lists it: built in (no id) or the person's own."""

    name: str
    query: str
    saved_id: int | None = None


def inbox_views(*, user: User, reach: Reach) -> list[ViewLink]:
    """The views offered above the inbox: "My overdue", one queue per group of the
    person's (by name), then the views they saved (one statement for both)."""
    views = [ViewLink("My overdue", InboxFilter(view="mine", due="overdue").query())]
    for name, query, saved_id in list_sql.view_names(
        owner_id=user.pk, group_ids=reach.group_ids, leave_out=ROLE_GROUPS
    ):
        if saved_id is None:
            views.append(
                ViewLink(f"{name.capitalize()} queue", InboxFilter(view="queue", group=name).query())
            )
        else:
            views.append(ViewLink(name, query, saved_id))
    return views


@dataclass(frozen=True)
class NavCounts:
    inbox: InboxCounts
    unread: int


def nav_counts(*, user: User, request: Any = None) -> NavCounts:
    """The navigation's numbers: the inbox counts (taken from `request` when its page
    already counted them) and the unread notifications."""
    counts = getattr(request, "inbox_counts", None)
    if counts is None:
        counts = inbox_counts(inbox_reach(user))
    return NavCounts(inbox=counts, unread=list_sql.unread_notifications(user.pk))
