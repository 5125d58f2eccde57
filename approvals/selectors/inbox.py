"""The inbox: what waits for a person — assigned to them, offered to their groups, or held
by someone who delegated their work to them — filtered, searched, sorted and paged by
keyset, with the counts the navigation shows.

A fixed number of queries whatever the page size or the data size (tests pin it;
bench/inbox measures it on a million requests): the person's groups and delegators, the
page of handoffs, their requests, and the counts.

The filtering, ordering and paging of open handoffs here are public: the team view
(approvals.selectors.team) offers the same filters over its team's items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Count, F, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Delegation, User
from accounts.roles import ROLE_PERMISSIONS
from approvals.models import ApprovalRequest, Notification, SavedView
from workflows.models import Handoff
from workflows.permissions import user_group_ids

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DUE_SOON = timedelta(hours=24)
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

    def holder_q(self, view: str = "all") -> Q:
        if view in ("mine", "snoozed"):
            return Q(assignee=self.user)
        queue = Q(assignee__isnull=True, candidate_group_id__in=self.group_ids)
        if view == "queue":
            return queue
        if view == "delegated":
            return self.delegated_q()
        return Q(assignee=self.user) | queue | self.delegated_q()

    def delegated_q(self) -> Q:
        """What waits for each delegator, of the types their delegation reaches, never a
        request of their own (nobody acts for a requester on it): as the service rules.
        Made once per reach (a page reads it twice: its rows and its counts)."""
        return self._delegated

    @cached_property
    def _delegated(self) -> Q:
        found = Q(assignee_id__in=[])
        for delegator_id in self.delegators:
            held = Q(assignee_id=delegator_id) & ~Q(object_id__in=request_keys(Q(requester_id=delegator_id)))
            scope = self.scopes.get(delegator_id)
            if scope is not None:
                held &= Q(object_id__in=request_keys(Q(request_type__slug__in=sorted(scope))))
            found |= held
        return found


def inbox_reach(user: User) -> Reach:
    """One query for the delegations (the groups come with the person's permissions)."""
    delegations = Delegation.objects.active().filter(delegate=user).select_related("delegator")
    delegators: dict[int, User] = {}
    scopes: dict[int, frozenset[str] | None] = {}
    for d in delegations:
        if not d.delegator.is_active:
            continue
        delegators[d.delegator_id] = d.delegator
        # Two delegations from one person reach what either reaches; one of everything, all.
        known = scopes.get(d.delegator_id, frozenset())
        scopes[d.delegator_id] = None if known is None or not d.scope else known | set(d.scope)
    return Reach(user=user, group_ids=user_group_ids(user), delegators=delegators, scopes=scopes)


def awake(now: datetime) -> Q:
    """Handoffs not put aside by their holder at `now` (a snooze that ended counts as awake)."""
    return Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now)


def open_request_handoffs() -> QuerySet[Handoff]:
    """Every open handoff of an approval request."""
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    return Handoff.objects.filter(content_type=content_type, closed_at__isnull=True)


def request_keys(condition: Q) -> QuerySet[Any, Any]:
    """The keys (as handoffs store them) of the requests meeting `condition`: a subquery."""
    return (
        ApprovalRequest.objects.filter(condition)
        .annotate(key=Cast("pk", output_field=CharField()))
        .values("key")
    )


def _request_filter(filters: InboxFilter) -> Q | None:
    """The filters that are about the request, as a condition on handoffs (a semi-join on
    the request's key), or None when there are none."""
    q = Q()
    if filters.request_type:
        q &= Q(request_type__slug=filters.request_type)
    if filters.requester:
        q &= Q(requester__username=filters.requester)
    text = filters.q.strip()
    if text:
        ref = text.upper().removeprefix("REQ-")
        found = (
            Q(title__icontains=text)
            | Q(requester__first_name__icontains=text)
            | Q(requester__last_name__icontains=text)
            | Q(requester__username__iexact=text)
        )
        if ref.isdigit():
            found |= Q(pk=int(ref))
        q &= found
    if not q:
        return None
    return Q(object_id__in=request_keys(q))


def handoffs_filtered(query: QuerySet[Handoff], filters: InboxFilter, now: datetime) -> QuerySet[Handoff]:
    """`query` narrowed by the filter's group, stage, due date, type, requester and search text."""
    if filters.group:
        query = query.filter(candidate_group__name=filters.group)
    if filters.stage:
        query = query.filter(stage=filters.stage)
    if filters.due == "overdue":
        query = query.filter(due_at__lt=now)
    elif filters.due == "soon":
        query = query.filter(due_at__gte=now, due_at__lt=now + DUE_SOON)
    elif filters.due == "none":
        query = query.filter(due_at__isnull=True)
    about_request = _request_filter(filters)
    return query.filter(about_request) if about_request is not None else query


def handoff_order(filters: InboxFilter) -> tuple[str, list[Any]]:
    """The column the filter's sort pages on, and the full ordering (ties broken by id)."""
    if filters.sort == "oldest":
        return "opened_at", [F("opened_at").asc(), F("id").asc()]
    if filters.sort == "newest":
        return "opened_at", [F("opened_at").desc(), F("id").desc()]
    return "due_at", [F("due_at").asc(nulls_last=True), F("id").asc()]


def cursor_of(handoff: Handoff, filters: InboxFilter) -> str:
    column, _ = handoff_order(filters)
    value = getattr(handoff, column)
    return f"{value.isoformat() if value else ''}|{handoff.pk}"


def handoffs_after(query: QuerySet[Handoff], filters: InboxFilter, cursor: str) -> QuerySet[Handoff]:
    """The rows after `cursor` in the filter's order (a malformed cursor starts over)."""
    raw_value, _, raw_id = cursor.partition("|")
    value = parse_datetime(raw_value) if raw_value else None
    if not raw_id.isdigit() or (raw_value and value is None):
        return query
    last = int(raw_id)
    if filters.sort == "newest":
        return query.filter(Q(opened_at__lt=value) | Q(opened_at=value, id__lt=last))
    if filters.sort == "oldest":
        return query.filter(Q(opened_at__gt=value) | Q(opened_at=value, id__gt=last))
    if value is None:  # among the items without a due date, which come last
        return query.filter(due_at__isnull=True, id__gt=last)
    return query.filter(Q(due_at__gt=value) | Q(due_at=value, id__gt=last) | Q(due_at__isnull=True))


def handoffs_page(query: QuerySet[Handoff], order: list[Any], limit: int) -> list[Handoff]:
    """The first `limit` handoffs of `query` in `order`, with their holders (one query).

    The page is chosen first (a subquery of ids) and only its rows are joined to their
    assignee and group: joined before the sort, every matching row was (a hash of all
    users, half the page's time at a million requests: bench/inbox)."""
    page = query.order_by(*order).values("pk")[:limit]
    # The reminders' schedule (a JSON list decoded per row) is not shown by any list.
    return list(
        Handoff.objects.filter(pk__in=page)
        .select_related("assignee", "candidate_group")
        .defer("reminders_at")
        .order_by(*order)
    )


def inbox_counts(reach: Reach, *, now: datetime | None = None) -> InboxCounts:
    """How many items wait: assigned, in the queues, held for delegators, and overdue (one query)."""
    moment = now or timezone.now()
    active = awake(moment)
    # The rows are those the person may see (holder_q, with the delegations' rules); among
    # them, a delegator's item is one held by a delegator (nobody delegates to themselves:
    # a check constraint), so the count's own filter need not repeat the rules' subqueries
    # (compiling them again was a tenth of the inbox page's CPU, profiled).
    held_for_others = Q(assignee_id__in=sorted(reach.delegators))
    found = (
        open_request_handoffs()
        .filter(reach.holder_q())
        .aggregate(
            mine=Count("id", filter=reach.holder_q("mine") & active),
            queue=Count("id", filter=reach.holder_q("queue") & active),
            delegated=Count("id", filter=held_for_others & active),
            overdue=Count("id", filter=Q(due_at__lt=moment) & active),
            snoozed=Count("id", filter=reach.holder_q("mine") & ~active),
        )
    )
    return InboxCounts(**{k: int(v or 0) for k, v in found.items()})


def inbox_page(
    *,
    user: User,
    filters: InboxFilter | None = None,
    cursor: str = "",
    limit: int = 50,
    reach: Reach | None = None,
) -> InboxPage:
    """One page of the inbox of `user` with its counts."""
    filters = filters or InboxFilter()
    reach = reach or inbox_reach(user)
    now = timezone.now()
    base = open_request_handoffs().filter(reach.holder_q(filters.view))
    base = base.exclude(awake(now)) if filters.view == "snoozed" else base.filter(awake(now))
    query = handoffs_filtered(base, filters, now)
    if cursor:
        query = handoffs_after(query, filters, cursor)
    _, order = handoff_order(filters)
    handoffs = handoffs_page(query, order, limit + 1)
    more = len(handoffs) > limit
    handoffs = handoffs[:limit]
    rows = inbox_rows(handoffs, now=now, delegators=reach.delegators)
    return InboxPage(
        rows=rows,
        counts=inbox_counts(reach, now=now),
        next_cursor=cursor_of(handoffs[-1], filters) if more and handoffs else "",
        filter=filters,
    )


def inbox_rows(
    handoffs: Iterable[Handoff], *, now: datetime, delegators: Mapping[int, User] | None = None
) -> list[InboxRow]:
    """The handoffs with their requests (one query), due flags, and whose they are when
    they wait for one of `delegators` (who delegated their work to the viewer)."""
    handoffs = list(handoffs)
    delegators = delegators or {}
    # The lists show the request's reference, title, type and requester: its policy
    # version (a JSON document decoded per row), payload, and its type's payload schema
    # (another JSON document, decoded again for every row of the same type) are left out.
    requests_by_id = (
        ApprovalRequest.objects.select_related("requester", "request_type")
        .defer(
            "payload",
            "description",
            "outputs",
            "stage_slots",
            "request_type__payload_schema",
            "request_type__description",
        )
        .in_bulk([int(h.object_id) for h in handoffs])
    )
    rows = []
    for handoff in handoffs:
        request = requests_by_id.get(int(handoff.object_id))
        if request is None:
            continue
        due = handoff.due_at
        rows.append(
            InboxRow(
                handoff=handoff,
                request=request,
                overdue=due is not None and due < now,
                due_soon=due is not None and now <= due < now + DUE_SOON,
                on_behalf_of=delegators.get(handoff.assignee_id) if handoff.assignee_id else None,
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
    person's (by name), then the views they saved (one query for the groups, one for theirs)."""
    views = [ViewLink("My overdue", InboxFilter(view="mine", due="overdue").query())]
    groups = Group.objects.filter(pk__in=reach.group_ids).exclude(name__in=ROLE_GROUPS).order_by("name")
    views += [
        ViewLink(f"{g.name.capitalize()} queue", InboxFilter(view="queue", group=g.name).query())
        for g in groups
    ]
    views += [ViewLink(v.name, v.query, v.pk) for v in SavedView.objects.filter(owner=user).order_by("name")]
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
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True).count()
    return NavCounts(inbox=counts, unread=unread)
