"""The inbox page: tabs with counts, filters and search, saved views, bulk actions with a
result per item, the navigation's counts; and the bell's notifications."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, Notification, SavedView
from approvals.notifications import notify_transition
from approvals.services import items_act, request_act
from tests.approvals.conftest import World
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, make_request
from tests.mail_support import mail_tasks_run
from workflows import errors
from workflows.models import AuditEntry, Handoff
from workflows.services import handoff_claim, handoff_reassign

pytestmark = pytest.mark.django_db

INBOX = "/inbox/"


def _rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr[^>]* data-request="(\d+)"', response.content.decode())]


def _handoff(req: ApprovalRequest) -> Handoff:
    return Handoff.objects.for_instance(req).open().get()


# --- tabs, counts, filters ------------------------------------------------------------------


def test_the_tabs_count_mine_and_my_groups_queue(world: World) -> None:
    # given three requests offered to the approver's group, one of which they claimed
    first, second, third = (world.new_request(title=f"R{i}") for i in range(3))
    handoff_claim(handoff_id=_handoff(first).pk, actor=world.user("approver"))
    # when the approver opens the inbox
    response = world.client("approver").get(INBOX)
    html = response.content.decode()
    # then the tabs count one assigned, two in the queue, three in all; the navigation too
    assert 'data-testid="count-mine">1<' in html
    assert 'data-testid="count-queue">2<' in html
    assert 'data-testid="count-all">3<' in html
    assert 'data-testid="nav-inbox-count">3<' in html
    assert _rows(response) == [first.pk, second.pk, third.pk]
    # and the "mine" tab lists only the claimed one
    assert _rows(world.client("approver").get(INBOX, {"view": "mine"})) == [first.pk]


def test_a_row_shows_its_cells_escaped(world: World) -> None:
    # given a request whose title holds markup, claimed from the group by the approver
    req = world.new_request(title="<b>Desk</b> & chair")
    handoff = _handoff(req)
    handoff_claim(handoff_id=handoff.pk, actor=world.user("approver"))
    handoff.refresh_from_db()
    # when the approver opens the inbox
    html = world.client("approver").get(INBOX).content.decode()
    row = re.search(rf'<tr[^>]* data-request="{req.pk}".*?</tr>', html, re.S)
    assert row is not None
    cells = row.group(0)
    # then the title is escaped, and every cell says what the row holds
    assert "&lt;b&gt;Desk&lt;/b&gt; &amp; chair" in cells
    assert "<b>Desk" not in cells
    assert f'data-testid="holder">{handoff.holder_label()}<' in cells
    assert f'data-label="Requester">{req.requester.display_name}<' in cells
    assert f'data-label="Type">{req.request_type}<' in cells
    assert f'href="/requests/{req.pk}/"' in cells
    # and the holder can release it and snooze it from the row
    assert f'aria-label="Release {req.reference}">Release</button>' in cells
    assert 'data-testid="snooze">Snooze</button>' in cells


def test_search_finds_by_reference_title_and_requester(world: World) -> None:
    desk = world.new_request(title="Standing desk")
    chair = world.new_request(title="Office chair")
    client = world.client("approver")
    assert _rows(client.get(INBOX, {"q": "desk"})) == [desk.pk]
    assert _rows(client.get(INBOX, {"q": chair.reference})) == [chair.pk]
    assert _rows(client.get(INBOX, {"q": "rita"})) == [desk.pk, chair.pk]
    assert _rows(client.get(INBOX, {"q": "nothing like it"})) == []
    assert "Nothing matches these filters" in client.get(INBOX, {"q": "nothing like it"}).content.decode()


def test_filters_by_type_due_and_group_and_sorts(world: World) -> None:
    # given a request of another type with a past due date, and one of the usual type
    other_type = RequestTypeFactory.create(
        slug="travel",
        name="Travel",
        policy={"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}, "sla": "2d"}]},
    )
    late = make_request(requester=world.user("requester"), request_type=other_type, title="Trip")
    Handoff.objects.filter(pk=_handoff(late).pk).update(due_at=timezone.now() - timedelta(hours=1))
    usual = world.new_request(title="Usual")
    client = world.client("approver")
    # when filtered / then only what matches is listed
    assert _rows(client.get(INBOX, {"request_type": "travel"})) == [late.pk]
    assert _rows(client.get(INBOX, {"due": "overdue"})) == [late.pk]
    assert _rows(client.get(INBOX, {"due": "none"})) == [usual.pk]
    assert _rows(client.get(INBOX, {"group": "reviewers"})) == [late.pk, usual.pk]
    # and soonest due first by default (no due date last), newest first on demand
    assert _rows(client.get(INBOX)) == [late.pk, usual.pk]
    assert _rows(client.get(INBOX, {"sort": "newest"})) == [usual.pk, late.pk]
    # and the overdue one carries its badge, and the count shows in the navigation
    html = client.get(INBOX).content.decode()
    assert 'data-testid="count-overdue">1 overdue<' in html
    assert 'data-testid="nav-overdue">1 overdue<' in html


@pytest.mark.parametrize(
    ("query", "field"),
    [({"due": "yesterday"}, "due"), ({"sort": "random"}, "sort"), ({"request_type": "nope"}, "request_type")],
)
def test_a_bad_filter_answers_400_naming_it(world: World, query: dict[str, str], field: str) -> None:
    world.new_request()
    response = world.client("approver").get(INBOX, query)
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert f"Unknown {field.replace('_', ' ')}" in response.content.decode()


def test_an_htmx_filter_request_gets_the_list_only(world: World) -> None:
    world.new_request(title="Standing desk")
    response = world.client("approver").get(INBOX, {"q": "desk"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert '<div id="inbox-list">' in html
    assert "<html" not in html


# --- saved views ------------------------------------------------------------------------------


def test_built_in_views_and_a_saved_one(world: World) -> None:
    client = world.client("approver")
    html = client.get(INBOX).content.decode()
    # given the built-in views: my overdue, and a queue per group of mine
    assert "My overdue" in html
    assert "Reviewers queue" in html
    # when the approver saves a filtered view
    response = client.post(reverse("approvals:saved_view_create"), {"name": "Desks", "query": "q=desk"})
    assert response.status_code == 302
    assert response["Location"] == "/inbox/?q=desk"
    view = SavedView.objects.get(owner=world.user("approver"))
    assert (view.name, view.query) == ("Desks", "q=desk")
    # then it is offered, and deleting it is theirs alone
    assert "Desks" in client.get(INBOX).content.decode()
    delete = reverse("approvals:saved_view_delete", args=[view.pk])
    assert world.client("other_approver").post(delete).status_code == 404
    assert client.post(delete).status_code == 302
    assert not SavedView.objects.exists()


def test_a_view_without_a_name_is_not_saved(world: World) -> None:
    response = world.client("approver").post(
        reverse("approvals:saved_view_create"), {"name": " ", "query": "q=x"}
    )
    assert response.status_code == 302
    assert not SavedView.objects.exists()


# --- bulk actions ------------------------------------------------------------------------------


def test_a_bulk_approve_reports_each_item_and_keeps_the_failed_selected(world: World) -> None:
    # given three items, one of which someone else decided meanwhile
    reqs = [world.new_request(title=f"R{i}") for i in range(3)]
    handoffs = [_handoff(r) for r in reqs]
    colleague = UserFactory.create(username="cole", roles=["approvers"])
    colleague.groups.add(*world.user("approver").groups.filter(name="reviewers"))
    request_act(request_id=reqs[1].pk, action="reject", actor=colleague, comment="No")
    client = world.client("approver")
    # when the approver approves all three from the inbox
    response = client.post(
        reverse("approvals:inbox_act"),
        {"action": "approve", "items": [h.pk for h in handoffs], "next": "/inbox/?sort=oldest"},
    )
    # then they go back to the same inbox, two approved and one not
    assert response.status_code == 302
    assert response["Location"] == "/inbox/?sort=oldest"
    states = [ApprovalRequest.objects.get(pk=r.pk).state for r in reqs]
    assert states == ["approved", "rejected", "approved"]
    # and the inbox shows each item's result once, the failed one named with its reason
    page = client.get(response["Location"])
    results = page.context["results"]["items"]
    assert [(r["reference"], r["ok"]) for r in results] == [
        (reqs[0].reference, True),
        (reqs[1].reference, False),
        (reqs[2].reference, True),
    ]
    assert "No such item." not in results[1]["message"]
    html = page.content.decode()
    assert 'data-testid="bulk-results"' in html
    assert "Approve: 2 done, 1 not done (still selected)." in html
    assert 'data-testid="bulk-results"' not in client.get(INBOX).content.decode()


def test_items_that_fail_stay_selected(world: World) -> None:
    # given an item in the reviewers' queue and one a colleague claimed
    mine, taken = world.new_request(title="Mine"), world.new_request(title="Taken")
    colleague = UserFactory.create(username="cole", roles=["approvers"])
    colleague.groups.add(*world.user("approver").groups.filter(name="reviewers"))
    handoff_claim(handoff_id=_handoff(taken).pk, actor=colleague)
    client = world.client("manager")
    # when a manager (who sees both, and is in no reviewers' group) tries to claim them
    items = [_handoff(mine).pk, _handoff(taken).pk]
    client.post(reverse("approvals:inbox_act"), {"action": "claim", "items": items})
    # then neither is claimed, and both stay selected on the next page
    page = client.get(INBOX)
    assert page.context["selected"] == set(items)
    assert Handoff.objects.get(pk=items[0]).assignee is None


def test_a_bulk_reject_asks_first_and_needs_a_reason(world: World) -> None:
    reqs = [world.new_request(title=f"R{i}") for i in range(2)]
    items = [_handoff(r).pk for r in reqs]
    client = world.client("approver")
    # when the approver rejects both / then a confirmation step answers, nothing changed
    asked = client.post(reverse("approvals:inbox_act"), {"action": "reject", "items": items})
    assert asked.status_code == 200
    assert "Reject 2 items?" in asked.content.decode()
    assert {ApprovalRequest.objects.get(pk=r.pk).state for r in reqs} == {"in_review"}
    # when confirmed without a reason / then nothing is done, and they are told why
    refused = client.post(
        reverse("approvals:inbox_act"), {"action": "reject", "items": items, "confirmed": "on"}
    )
    assert refused.status_code == 302
    assert {ApprovalRequest.objects.get(pk=r.pk).state for r in reqs} == {"in_review"}
    assert "Say why you reject it." in client.get(INBOX).content.decode()
    # when confirmed with one / then both are rejected
    client.post(
        reverse("approvals:inbox_act"),
        {"action": "reject", "items": items, "confirmed": "on", "comment": "No"},
    )
    assert {ApprovalRequest.objects.get(pk=r.pk).state for r in reqs} == {"rejected"}


def test_bulk_refuses_what_the_person_may_not_see(world: World) -> None:
    req = world.in_review
    results = items_act(
        actor=world.user("outsider"), action="approve", handoff_ids=[_handoff(req).pk, 999999]
    )
    assert [(r.ok, r.message) for r in results] == [(False, "No such item."), (False, "No such item.")]
    req.refresh_from_db()
    assert req.state == "in_review"


def test_bulk_refuses_an_unknown_action_or_too_many_items(world: World) -> None:
    with pytest.raises(errors.InvalidInput):
        items_act(actor=world.user("approver"), action="withdraw", handoff_ids=[1])
    with pytest.raises(errors.InvalidInput):
        items_act(actor=world.user("approver"), action="approve", handoff_ids=list(range(1, 102)))
    response = world.client("approver").post(reverse("approvals:inbox_act"), {"action": "approve"})
    assert response.status_code == 302
    assert "Select at least one item." in world.client("approver").get(INBOX).content.decode()


def test_a_bulk_claim_makes_the_items_mine(world: World) -> None:
    reqs = [world.new_request(title=f"R{i}") for i in range(2)]
    items = [_handoff(r).pk for r in reqs]
    world.client("approver").post(reverse("approvals:inbox_act"), {"action": "claim", "items": items})
    assert {Handoff.objects.get(pk=i).assignee for i in items} == {world.user("approver")}


# --- my requests --------------------------------------------------------------------------------


def test_my_requests_filter_by_state_and_type_and_search(world: World) -> None:
    desk = world.new_request(title="Standing desk")
    draft = world.draft
    client = world.client("requester")
    url = reverse("approvals:my_requests")
    assert _rows(client.get(url, {"state": "draft"})) == [draft.pk]
    assert _rows(client.get(url, {"q": "desk"})) == [desk.pk]
    assert _rows(client.get(url, {"q": desk.reference})) == [desk.pk]
    assert _rows(client.get(url, {"request_type": "general"})) == [draft.pk, desk.pk]
    bad = client.get(url, {"state": "lost"})
    assert bad.status_code == 400
    assert list(bad.context["form"].errors) == ["state"]


# --- notifications ---------------------------------------------------------------------------------


def _notify(req: ApprovalRequest, event: str = "e1") -> None:
    entry = AuditEntry.objects.for_instance(req).order_by("-seq").first()
    assert entry is not None
    notify_transition(request_id=req.pk, action=entry.action, audit_seq=entry.seq, event_id=event)


def test_a_decision_at_one_stage_of_two_says_so_and_where_it_goes() -> None:
    # given a two-stage policy: the requester's group, then finance
    team, finance = GroupFactory.create(name="team"), GroupFactory.create(name="finance")
    lead = UserFactory.create(username="lead", first_name="Lena", last_name="", roles=["approvers"])
    lead.groups.add(team)
    payer = UserFactory.create(username="payer", roles=["approvers"], email="payer@example.com")
    payer.groups.add(finance)
    request_type = RequestTypeFactory.create(
        policy={
            "stages": [
                {"name": "manager", "approvers": {"groups": ["team"]}},
                {"name": "finance", "approvers": {"groups": ["finance"]}},
            ]
        }
    )
    requester = UserFactory.create(username="rita", roles=["requesters"], email="rita@example.com")
    req = make_request(requester=requester, request_type=request_type)
    # when the first stage approves it
    request_act(request_id=req.pk, action="approve", actor=lead)
    _notify(req)
    # then the requester reads exactly that, and finance reads that it waits for them
    told = {n.recipient.username: n for n in Notification.objects.filter(request=req)}
    assert told["rita"].text == "approved by Lena at stage manager; now with group finance at stage finance"
    assert told["rita"].kind == Notification.Kind.DECISION
    assert told["payer"].kind == Notification.Kind.HANDOFF
    assert told["payer"].text.startswith("waits for you: approved by Lena at stage manager")
    assert "lead" not in told  # not about their own action
    mail_tasks_run()
    subjects = sorted(m.subject for m in mail.outbox)
    assert any("approved by Lena at stage manager; now with group finance" in s for s in subjects)
    # and a repeated delivery tells nobody twice
    _notify(req)
    assert Notification.objects.filter(request=req).count() == 2


def test_a_reassignment_tells_both_holders(world: World) -> None:
    req = world.in_review
    handoff = handoff_claim(handoff_id=_handoff(req).pk, actor=world.user("approver"))
    other = UserFactory.create(username="otto", first_name="Otto", last_name="", roles=["approvers"])
    handoff_reassign(handoff_id=handoff.pk, actor=world.user("manager"), to_user=other, reason="Alex is away")
    _notify(req, "e-reassign")
    told = {n.recipient.username: n for n in Notification.objects.filter(request=req)}
    assert set(told) == {"alex", "otto"}
    assert told["otto"].kind == Notification.Kind.REASSIGNED
    assert told["otto"].text == "reassigned by Maria from Alex to Otto: Alex is away"


def test_the_bell_counts_unread_and_marks_them_read(world: World) -> None:
    # given two notifications for the requester
    req = world.in_review
    request_act(
        request_id=req.pk, action="request_changes", actor=world.user("approver"), comment="Add a quote"
    )
    _notify(req, "a")
    Notification.objects.create(
        recipient=world.user("requester"), request=req, event_id="b", subject="x", text="something else"
    )
    client = world.client("requester")
    # then the bell shows two unread, and the list shows them newest first
    html = client.get(reverse("approvals:notifications")).content.decode()
    assert 'data-testid="nav-unread">2<' in html
    assert html.index("something else") < html.index("sent back for changes by Alex at stage review")
    # when one is opened / then it is read and the request opens
    first = Notification.objects.filter(recipient=world.user("requester")).order_by("id").first()
    assert first is not None
    opened = client.post(reverse("approvals:notifications_read"), {"notification": first.pk, "open": "1"})
    assert opened["Location"] == reverse("approvals:request_detail", args=[req.pk])
    assert 'data-testid="nav-unread">1<' in client.get(INBOX).content.decode()
    # when all are marked read / then the bell shows none
    client.post(reverse("approvals:notifications_read"))
    assert 'data-testid="nav-unread"' not in client.get(INBOX).content.decode()
    # and nobody marks another's notifications
    other = world.client("approver").post(reverse("approvals:notifications_read"), {"notification": first.pk})
    assert other.status_code == 302


@pytest.mark.parametrize(
    ("role", "changes"),
    [
        ("requester", False),
        ("approver", True),
        ("other_approver", False),
        ("manager", False),
        ("auditor", False),
        ("admin", False),
        ("outsider", False),
    ],
)
def test_a_bulk_approve_by_each_role(world: World, role: str, changes: bool) -> None:
    # given a request in review, offered to the approver's group
    req = world.in_review
    # when someone of this role approves it from the inbox
    response = world.client(role).post(
        reverse("approvals:inbox_act"), {"action": "approve", "items": [_handoff(req).pk]}
    )
    # then they are sent back to the inbox, and only its approver changed it
    assert response.status_code == 302
    req.refresh_from_db()
    assert (req.state == "approved") is changes


def test_the_workspace_pages_refuse_anonymous_people(client: Client) -> None:
    for url in (INBOX, reverse("approvals:notifications")):
        assert client.get(url).status_code == 302
    for url in (
        reverse("approvals:inbox_act"),
        reverse("approvals:saved_view_create"),
        reverse("approvals:notifications_read"),
    ):
        response = client.post(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
