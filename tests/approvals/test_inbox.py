"""The inbox selector: whose items, filters, search, sort, keyset paging, counts, and a
fixed number of queries whatever the length."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Delegation
from approvals.models import ApprovalRequest
from approvals.selectors.inbox import InboxFilter, inbox_page
from tests.approvals.policy_world import PolicyWorld, load_demo_world
from workflows.models import Handoff
from workflows.services import handoff_claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> PolicyWorld:
    return load_demo_world()


def _refs(page) -> list[str]:
    return [row.request.reference for row in page.rows]


def _due(request: ApprovalRequest, when) -> None:
    Handoff.objects.for_instance(request).open().update(due_at=when)


def test_an_approver_sees_what_is_assigned_to_them_and_their_groups_queues(world):
    # given a claim waiting for maria (the requester's manager) and content for the editors
    claim = world.submit("expense")
    post = world.submit("content")
    # when alex (an editor) and maria open their inboxes
    alex, maria = inbox_page(user=world["alex"]), inbox_page(user=world["maria"])
    # then each sees their own: maria the claim assigned to her, alex the editors' queue
    assert _refs(maria) == [claim.reference]
    assert post.reference in _refs(alex)
    assert claim.reference not in _refs(alex)
    assert (maria.counts.mine, maria.counts.queue) == (1, 0)
    assert alex.counts.queue >= 1


def test_filters_search_and_views_narrow_the_inbox(world):
    small = world.submit("expense", title="Taxi to the airport", amount=40)
    big = world.submit("expense", title="Hotel in Porto", amount=900)
    other = world.submit("expense", requester="alex", title="Train to Lisbon", amount=60)
    maria = world["maria"]
    everything = _refs(inbox_page(user=maria))
    assert set(everything) == {small.reference, big.reference, other.reference}
    # by text in the title, by reference, by requester
    assert _refs(inbox_page(user=maria, filters=InboxFilter(q="porto"))) == [big.reference]
    assert _refs(inbox_page(user=maria, filters=InboxFilter(q=big.reference))) == [big.reference]
    assert _refs(inbox_page(user=maria, filters=InboxFilter(q=f"req-{small.pk}"))) == [small.reference]
    assert set(_refs(inbox_page(user=maria, filters=InboxFilter(requester="alex")))) == {other.reference}
    # by type and stage
    assert (
        len(_refs(inbox_page(user=maria, filters=InboxFilter(request_type="expense", stage="manager")))) == 3
    )
    assert _refs(inbox_page(user=maria, filters=InboxFilter(request_type="access"))) == []
    # by due date
    _due(small, timezone.now() - timedelta(hours=1))
    _due(big, timezone.now() + timedelta(hours=3))
    _due(other, None)
    assert _refs(inbox_page(user=maria, filters=InboxFilter(due="overdue"))) == [small.reference]
    assert _refs(inbox_page(user=maria, filters=InboxFilter(due="soon"))) == [big.reference]
    assert _refs(inbox_page(user=maria, filters=InboxFilter(due="none"))) == [other.reference]
    # and the views: assigned to her, and nothing in queues
    assert len(_refs(inbox_page(user=maria, filters=InboxFilter(view="mine")))) == 3
    assert _refs(inbox_page(user=maria, filters=InboxFilter(view="queue"))) == []


def test_soonest_due_comes_first_then_those_without_a_due_date_and_pages_follow_by_keyset(world):
    # given seven claims for maria with due dates in mixed order, two without any
    now = timezone.now()
    made = [world.submit("expense", title=f"Claim {i}", amount=10 + i) for i in range(7)]
    offsets = [5, None, 1, 3, None, 2, 4]
    for request, hours in zip(made, offsets, strict=True):
        _due(request, now + timedelta(hours=hours) if hours is not None else None)
    expected = [made[2], made[5], made[3], made[6], made[0], made[1], made[4]]
    # when her inbox is read three at a time, following the cursor
    seen, cursor = [], ""
    while True:
        page = inbox_page(user=world["maria"], cursor=cursor, limit=3)
        seen += page.rows
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    # then every item came once, soonest due first, the undated last (oldest first)
    assert [row.request.pk for row in seen] == [r.pk for r in expected]
    # and oldest-first and newest-first orders page the same way
    for sort, order in (("oldest", made), ("newest", list(reversed(made)))):
        seen, cursor = [], ""
        while True:
            page = inbox_page(user=world["maria"], filters=InboxFilter(sort=sort), cursor=cursor, limit=2)
            seen += page.rows
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert [row.request.pk for row in seen] == [r.pk for r in order], sort


def test_a_delegate_sees_the_items_of_who_delegated_to_them_marked_for_them(world):
    # given maria, out of office, who delegated to alex
    claim = world.submit("expense")
    Delegation.objects.create(delegator=world["maria"], delegate=world["alex"], reason="Holiday")
    # when alex opens his inbox
    page = inbox_page(user=world["alex"])
    # then maria's claim is there, marked as waiting for maria
    (row,) = [r for r in page.rows if r.request.pk == claim.pk]
    assert row.on_behalf_of == world["maria"]
    assert page.counts.delegated == 1
    # and once the delegation is revoked, it is not
    Delegation.objects.update(revoked_at=timezone.now())
    assert claim.reference not in _refs(inbox_page(user=world["alex"]))


def test_a_delegate_sees_only_the_types_the_delegation_reaches(world):
    # given maria waits on an expense claim and a new hire, and delegated only expenses to alex
    claim = world.submit("expense")
    hire = world.submit("onboarding")
    Delegation.objects.create(delegator=world["maria"], delegate=world["alex"], scope=["expense"])
    # when alex opens his inbox's delegated view
    page = inbox_page(user=world["alex"], filters=InboxFilter(view="delegated"))
    # then only the claim is there for maria, and the counts agree
    assert _refs(page) == [claim.reference]
    assert hire.reference not in _refs(inbox_page(user=world["alex"]))
    assert page.counts.delegated == 1
    # when a second delegation from maria covers every type
    Delegation.objects.create(delegator=world["maria"], delegate=world["alex"])
    page = inbox_page(user=world["alex"], filters=InboxFilter(view="delegated"))
    # then both are
    assert set(_refs(page)) == {claim.reference, hire.reference}
    assert page.counts.delegated == 2


def test_a_delegate_never_sees_the_delegators_own_requests_waiting_for_them(world):
    # given rita's claim was sent back to her for changes, and rita delegated all to eddie
    claim = world.submit("expense")
    world.act(claim, "request_changes", "maria")
    assert Handoff.objects.for_instance(claim).open().get().assignee == world["rita"]
    Delegation.objects.create(delegator=world["rita"], delegate=world["eddie"])
    # when eddie opens his inbox  /  then rita's own request is not his to act on
    page = inbox_page(user=world["eddie"])
    assert claim.reference not in _refs(page)
    assert page.counts.delegated == 0


def test_a_delegation_does_not_chain_in_the_inbox(world):
    # given maria delegated to alex, and alex delegated to eddie
    claim = world.submit("expense")
    Delegation.objects.create(delegator=world["maria"], delegate=world["alex"])
    Delegation.objects.create(delegator=world["alex"], delegate=world["eddie"])
    # when eddie opens his inbox  /  then maria's claim is not there
    assert claim.reference not in _refs(inbox_page(user=world["eddie"]))


def test_claimed_items_leave_the_queue_for_the_others(world):
    post = world.submit("content")
    handoff = Handoff.objects.for_instance(post).open().get()
    handoff_claim(handoff_id=handoff.pk, actor=world["alex"])
    assert post.reference in _refs(inbox_page(user=world["alex"], filters=InboxFilter(view="mine")))
    assert post.reference not in _refs(inbox_page(user=world["eddie"]))


@pytest.mark.parametrize("count", [3, 30])
def test_a_page_costs_the_same_queries_whatever_its_length(world, count):
    for i in range(count):
        world.submit("expense", title=f"Claim {i}")
    Delegation.objects.create(delegator=world["fiona"], delegate=world["maria"])
    maria = type(world["maria"]).objects.get(pk=world["maria"].pk)
    with CaptureQueriesContext(connection) as captured:
        page = inbox_page(user=maria, filters=InboxFilter(q="claim"), limit=50)
    assert len(page.rows) == count
    # the person's roles, their delegations, the page with its requests, the counts
    assert len(captured.captured_queries) == 4, [q["sql"][:120] for q in captured.captured_queries]
