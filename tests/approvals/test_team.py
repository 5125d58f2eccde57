"""The team view's selector: what waits for a manager's people and their groups, per member
and per group, oldest first, with the inbox's filters, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.selectors.inbox import InboxFilter
from approvals.selectors.team import TeamFilter, may_see_team, team_page
from tests.approvals.policy_world import PolicyWorld, load_demo_world
from workflows.models import Handoff
from workflows.services import handoff_claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> PolicyWorld:
    # Maria manages Operations (Rita, Alex) and Rita, Alex, Eddie and Sam report to her.
    return load_demo_world()


def _refs(page) -> list[str]:
    return [row.request.reference for row in page.rows]


def _fresh(user: User) -> User:
    """The same person without cached roles (as on a new request)."""
    return User.objects.get(pk=user.pk)


def _handoff(request: ApprovalRequest, **where) -> Handoff:
    return Handoff.objects.for_instance(request).open().get(**where)


@pytest.fixture
def work(world: PolicyWorld) -> dict[str, ApprovalRequest]:
    """A post Alex claimed from the editors, one still in the editors' queue, an access
    request for Owen and the security group, and an expense claim waiting for Maria."""
    now = timezone.now()
    claimed = world.submit("content", title="Claimed post")
    queued = world.submit("content", title="Queued post")
    access = world.submit("access", title="Payroll access")
    expense = world.submit("expense", title="Taxi")
    handoff_claim(handoff_id=_handoff(claimed).pk, actor=world["alex"])
    # opened in this order, days apart; the queued post is overdue
    for days, request in ((5, claimed), (3, queued), (1, access), (1, expense)):
        Handoff.objects.for_instance(request).open().update(opened_at=now - timedelta(days=days))
    Handoff.objects.for_instance(queued).open().update(due_at=now - timedelta(hours=2))
    return {"claimed": claimed, "queued": queued, "access": access, "expense": expense}


def test_only_managers_and_superusers_see_a_team(world: PolicyWorld) -> None:
    assert may_see_team(world["maria"])
    assert may_see_team(world["admin"])
    for name in ("rita", "alex", "audrey", "fiona"):
        assert not may_see_team(world[name]), name


def test_a_manager_sees_her_peoples_and_their_groups_work_oldest_first(world, work) -> None:
    # when Maria opens her team view
    page = team_page(user=_fresh(world["maria"]))
    # then her people are listed, who waited longest first, with what each holds
    members = {w.key: (w.open, w.overdue) for w in page.members}
    assert members == {"alex": (1, 0), "eddie": (0, 0), "rita": (0, 0), "sam": (0, 0)}
    assert page.members[0].key == "alex"
    # and the groups where work waits for them: the editors' queue (overdue) and security's
    groups = {w.key: (w.open, w.overdue) for w in page.groups}
    assert groups["editors"] == (1, 1)
    assert groups["security"] == (1, 0)
    assert "requesters" not in groups  # a role group, with nothing waiting in it
    assert [w.key for w in page.groups][:2] == ["editors", "security"]
    # and the items, oldest first: not Owen's part of the access request, nor her own claim
    assert _refs(page) == [work["claimed"].reference, work["queued"].reference, work["access"].reference]
    assert page.rows[1].overdue
    assert str(page.rows[2].handoff.candidate_group) == "security"
    assert (page.total_open, page.total_overdue) == (3, 1)


def test_the_inbox_filters_narrow_the_counts_and_the_items(world, work) -> None:
    maria = _fresh(world["maria"])
    # by type
    content = team_page(
        user=maria, filters=TeamFilter(items=InboxFilter(request_type="content", sort="oldest"))
    )
    assert _refs(content) == [work["claimed"].reference, work["queued"].reference]
    assert "security" not in {w.key for w in content.groups if w.open}
    # by due date and search text
    overdue = team_page(user=maria, filters=TeamFilter(items=InboxFilter(due="overdue", sort="oldest")))
    assert _refs(overdue) == [work["queued"].reference]
    assert {w.key: w.open for w in overdue.members}["alex"] == 0
    found = team_page(user=maria, filters=TeamFilter(items=InboxFilter(q="payroll", sort="oldest")))
    assert _refs(found) == [work["access"].reference]
    # newest first
    newest = team_page(user=maria, filters=TeamFilter(items=InboxFilter(sort="newest")))
    assert _refs(newest) == [work["access"].reference, work["queued"].reference, work["claimed"].reference]
    # one member's items, one group's
    assert _refs(team_page(user=maria, filters=TeamFilter(member="alex"))) == [work["claimed"].reference]
    assert _refs(team_page(user=maria, filters=TeamFilter(member="owen"))) == []  # not hers
    editors = team_page(user=maria, filters=TeamFilter(group="editors"))
    assert _refs(editors) == [work["claimed"].reference, work["queued"].reference]
    # and the links of each row keep the filters
    assert "member=alex" in content.members[0].query
    assert "request_type=content" in content.members[0].query


def test_pages_follow_by_keyset(world, work) -> None:
    maria = _fresh(world["maria"])
    seen, cursor = [], ""
    while True:
        page = team_page(user=maria, cursor=cursor, limit=2)
        seen += _refs(page)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [work["claimed"].reference, work["queued"].reference, work["access"].reference]


def test_someone_who_manages_nobody_sees_an_empty_team(world, work) -> None:
    # given Fiona is made a manager by role, but manages no team and has no reports
    page = team_page(user=_fresh(world["fiona"]))
    assert (page.members, page.rows) == ([], [])


def test_a_superuser_sees_every_team_listing_those_with_work(world, work) -> None:
    page = team_page(user=_fresh(world["admin"]))
    # everyone in a team or with a manager who holds something: Alex, and Maria herself
    # (she is in the Operations team) with the expense claim
    assert {w.key for w in page.members} == {"alex", "maria"}
    assert page.everyone
    assert work["expense"].reference in _refs(page)


@pytest.mark.parametrize("count", [3, 30])
def test_the_team_view_costs_the_same_queries_whatever_its_size(world, count) -> None:
    # given many items held by the team and waiting in its groups, some overdue
    for i in range(count):
        post = world.submit("content", title=f"Post {i}")
        if i % 2:
            handoff_claim(handoff_id=_handoff(post).pk, actor=world["eddie"])
        else:
            Handoff.objects.for_instance(post).open().update(due_at=timezone.now() - timedelta(hours=1))
    world.submit("access", title="Access")
    maria = _fresh(world["maria"])
    maria.has_perm("workflows.reassign_handoff")  # the view's permission check reads the roles
    # when the team view is read with filters
    with CaptureQueriesContext(connection) as captured:
        page = team_page(user=maria, filters=TeamFilter(items=InboxFilter(q="post", sort="oldest")), limit=50)
    # then every item is there, in the same number of statements:
    # members, groups, the counts per member and per group (one statement), the page with its requests
    assert len(page.rows) == count
    assert len(captured.captured_queries) == 4, [q["sql"][:150] for q in captured.captured_queries]
