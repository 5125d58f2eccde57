"""The managers' pages: delegations (set up, listed, revoked after a confirmation), acting
for someone from a request's page, the team view and reassigning from it or from a
request's page. Errors beside their fields, the right status, nothing half-made, and
nothing shown to people who may not see it. (Who gets in at all: test_pages.py.)"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Delegation, User
from approvals.delegations import delegation_create, delegation_revoke
from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.approvals.conftest import World, client_for
from tests.factories import GroupFactory, UserFactory, make_approver, make_request
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db

DELEGATIONS = reverse("approvals:delegations")
TEAM = reverse("approvals:team")


def _field_html(html: str, name: str) -> str:
    """The HTML of one form field's block (see approvals/_field.html)."""
    assert f'data-field="{name}"' in html, f"no field {name}"
    return html.split(f'data-field="{name}"', 1)[1].split('<div class="field', 1)[0]


def _section(html: str, testid: str) -> str:
    assert f'data-testid="{testid}"' in html, f"no {testid} on the page"
    return html.split(f'data-testid="{testid}"', 1)[1].split("</section>", 1)[0]


def _detail(req: ApprovalRequest) -> str:
    return reverse("approvals:request_detail", args=[req.pk])


def _delegation_data(**changes: Any) -> dict[str, Any]:
    today = timezone.localdate()
    data = {
        "delegate": "dan",
        "starts_at": today.isoformat(),
        "ends_at": (today + timedelta(days=5)).isoformat(),
        "coverage": "all",
        "reason": "Holiday",
    }
    data.update(changes)
    return data


@pytest.fixture
def dan() -> User:
    return UserFactory.create(username="dan", first_name="Dan", last_name="Deputy")


def _delegate(delegator: User, delegate: User, **changes: Any) -> Delegation:
    now = timezone.now()
    values: dict[str, Any] = {"starts_at": now - timedelta(minutes=1), "ends_at": now + timedelta(days=3)}
    values.update(changes)
    return delegation_create(actor=delegator, delegator=delegator, delegate=delegate, **values)


# --- the delegations page -----------------------------------------------------------------


def test_a_person_sets_up_their_own_out_of_office_from_the_page(world: World, dan: User) -> None:
    # given Alex on the delegations page, where the form is his own
    client = world.client("approver")
    page = client.get(DELEGATIONS)
    assert page.status_code == 200
    assert 'type="hidden" name="delegator" value="alex"' in page.content.decode()
    # when he delegates his 'general' requests to Dan for five days
    response = client.post(DELEGATIONS, _delegation_data(coverage="some", scope=["general"]))
    # then he is sent back to the page (post/redirect/get), which says so and lists it as open
    assert response.status_code == 302
    assert response.headers["Location"] == DELEGATIONS
    html = client.get(DELEGATIONS).content.decode()
    assert "Dan Deputy now stands in for your work until" in html
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.scope) == (
        world.user("approver"),
        dan,
        ["general"],
    )
    # the first day starts at its first moment, and the last day is included
    assert timezone.localtime(delegation.starts_at).time() == time.min
    assert (timezone.localtime(delegation.ends_at).date() - timezone.localdate()).days == 6
    row = _section(html, "open-delegations")
    assert f'data-delegation="{delegation.pk}" data-status="active"' in row
    assert "General" in row
    assert f"/delegations/{delegation.pk}/revoke/" in row


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"delegate": ""}, "delegate", "Say who stands in (their user name)."),
        ({"delegate": "nobody"}, "delegate", "Nobody has the user name &#x27;nobody&#x27;."),
        ({"delegate": "alex"}, "delegate", "Choose someone else"),
        ({"ends_at": ""}, "ends_at", "Say until when: a delegation always ends."),
        ({"ends_at": "2001-01-01", "starts_at": "2000-01-01"}, "ends_at", "The end is in the past"),
        ({"ends_at": "2000-01-01"}, "ends_at", "The end must come after the start."),
        ({"coverage": "some"}, "scope", "Choose at least one request type, or all of them."),
        ({"coverage": "some", "scope": ["nope"]}, "scope", "Select a valid choice."),
        ({"reason": "x" * 201}, "reason", "Ensure this value has at most 200 characters"),
    ],
    ids=[
        "no delegate",
        "unknown delegate",
        "to self",
        "no end",
        "end in the past",
        "end before start",
        "some types but none chosen",
        "unknown type",
        "reason too long",
    ],
)
def test_a_bad_delegation_is_shown_beside_its_field_and_nothing_is_made(
    world: World, dan: User, changes: dict[str, Any], field: str, message: str
) -> None:
    # given Alex on the delegations page
    client = world.client("approver")
    # when he posts a delegation with one thing wrong
    response = client.post(DELEGATIONS, _delegation_data(**changes))
    # then the page answers 400 with the error beside that field, keeping what he typed
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [field], form.errors
    html = response.content.decode()
    if field == "scope":
        assert message in html.split('data-testid="delegation-scope"', 1)[1].split("</fieldset>", 1)[0]
    else:
        assert message in _field_html(html, field)
    # and nothing was made
    assert not Delegation.objects.exists()


def test_a_manager_sets_one_up_for_a_team_member(world: World, dan: User) -> None:
    # given Maria, who manages Alex's team, on the delegations page
    client = world.client("manager")
    html = client.get(DELEGATIONS).content.decode()
    # then she may choose whose work: hers or Alex's (and nobody else's)
    chooser = _field_html(html, "delegator")
    assert re.findall(r'<option value="([^"]+)"', chooser) == ["maria", "alex"]
    # when she sets one up for Alex
    response = client.post(DELEGATIONS, _delegation_data(delegator="alex"))
    # then it is Alex's, recorded as set up by her, and listed to both of them
    assert response.status_code == 302
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.created_by) == (world.user("approver"), world.user("manager"))
    for role in ("manager", "approver"):
        listed = _section(world.client(role).get(DELEGATIONS).content.decode(), "open-delegations")
        assert f'data-delegation="{delegation.pk}"' in listed
        assert "by Maria" in listed
    # when she tries it for Fiona, who is not hers  /  then 403 beside the field, nothing made
    refused = client.post(DELEGATIONS, _delegation_data(delegator="fiona"))
    assert refused.status_code == 403
    assert "You may not set up delegations for Fiona" in _field_html(refused.content.decode(), "delegator")
    assert Delegation.objects.count() == 1


def test_the_lists_show_each_person_only_the_delegations_that_concern_them(world: World, dan: User) -> None:
    # given Alex delegated to Dan (private reason), and Fiona to Rita, one of them revoked
    alex = _delegate(world.user("approver"), dan, reason="Surgery")
    fiona = _delegate(world.user("other_approver"), world.user("requester"), reason="Conference")
    delegation_revoke(actor=world.user("other_approver"), delegation_id=fiona.pk)
    # then Dan sees Alex's (he is its delegate) but cannot revoke it
    dan_html = client_for(dan).get(DELEGATIONS).content.decode()
    assert "Surgery" in dan_html
    assert f"/delegations/{alex.pk}/revoke/" not in dan_html
    assert "Conference" not in dan_html
    # and Rita sees Fiona's among the past ones, revoked by Fiona
    past = _section(world.client("requester").get(DELEGATIONS).content.decode(), "past-delegations")
    assert f'data-delegation="{fiona.pk}" data-status="revoked"' in past
    assert "Surgery" not in past
    # and someone unconcerned sees neither, an auditor sees both without a way to revoke
    outsider = world.client("outsider").get(DELEGATIONS).content.decode()
    assert "Surgery" not in outsider
    assert "Conference" not in outsider
    auditor = world.client("auditor").get(DELEGATIONS).content.decode()
    assert "Surgery" in auditor
    assert "Conference" in auditor
    assert "/revoke/" not in auditor


def test_revoking_asks_first_then_ends_it_at_once(world: World, dan: User) -> None:
    # given Alex delegated to Dan, and Dan has Alex's review open
    req = world.in_review
    delegation = _delegate(world.user("approver"), dan)
    dan_client = client_for(dan)
    assert dan_client.get(_detail(req)).status_code == 200
    url = reverse("approvals:delegation_revoke", args=[delegation.pk])
    client = world.client("approver")
    # when Alex follows "Revoke…"  /  then he is asked to confirm, and nothing happened yet
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Revoke this delegation?" in confirm.content.decode()
    assert Delegation.objects.get().revoked_at is None
    # when he confirms
    response = client.post(url)
    # then it is revoked, by him, and he is sent back to the list that says so
    assert response.status_code == 302
    assert response.headers["Location"] == DELEGATIONS
    assert Delegation.objects.get().revoked_by == world.user("approver")
    assert "Revoked: Dan Deputy no longer acts for Alex." in client.get(DELEGATIONS).content.decode()
    # and at once Dan can neither open nor act on Alex's review
    assert dan_client.get(_detail(req)).status_code == 404
    post = dan_client.post(
        reverse("approvals:request_action", args=[req.pk]),
        {"action": "approve", "version": req.version, "on_behalf_of": "alex"},
    )
    assert post.status_code == 404
    # and revoking it again is a conflict, said plainly
    again = client.post(url)
    assert again.status_code == 409
    assert "already ended" in _section(again.content.decode(), "revoke-delegation")


# --- acting for someone on a request's page -------------------------------------------------


def test_a_delegate_acts_for_the_delegator_from_the_request_page(world: World, dan: User) -> None:
    # given Alex delegated his work to Dan, who has no role of his own
    req = world.in_review
    _delegate(world.user("approver"), dan, reason="Holiday")
    client = client_for(dan)
    # when Dan opens the request waiting for Alex's group
    response = client.get(_detail(req))
    # then it is there, with Alex's actions marked as for Alex, and none of his own
    assert response.status_code == 200
    html = response.content.decode()
    acting = _section(html, "acting-for")
    assert "For Alex" in acting
    assert re.findall(r">([^<]+ for Alex)</button>", acting) == [
        "Approve for Alex",
        "Reject for Alex",
        "Ask for changes for Alex",
    ]
    assert 'name="on_behalf_of" value="alex"' in acting
    assert response.context["actions"] == []
    # when he rejects it for Alex without a comment (and confirms)
    url = reverse("approvals:request_action", args=[req.pk])
    asked = client.post(url, {"action": "reject", "version": req.version, "on_behalf_of": "alex"})
    assert 'data-testid="confirm"' in asked.content.decode()
    assert 'name="on_behalf_of" value="alex"' in asked.content.decode()
    refused = client.post(
        url, {"action": "reject", "version": req.version, "on_behalf_of": "alex", "confirmed": "on"}
    )
    # then the reason is asked for beside Alex's comment field, and nothing changed
    assert refused.status_code == 400
    field = _section(refused.content.decode(), "acting-comment-field").split("</div>", 1)[0]
    assert "Say why you reject it." in field
    req.refresh_from_db()
    assert req.state == "in_review"
    # when he approves it for Alex with a comment
    done = client.post(
        url, {"action": "approve", "version": req.version, "on_behalf_of": "alex", "comment": "For Alex"}
    )
    # then it is approved, the history names both, and he still sees the request he acted on
    assert done.status_code == 302
    page = client.get(done.headers["Location"])
    assert "Done: approve for Alex." in page.content.decode()
    entry = AuditEntry.objects.for_instance(req).get(action="approve")
    assert (entry.actor, entry.on_behalf_of) == (dan, world.user("approver"))
    history = _section(page.content.decode(), "history")
    assert '<strong class="actor">Dan Deputy</strong>' in history
    assert '<strong class="principal">Alex</strong>' in history


def test_the_delegations_page_lists_what_waits_for_the_people_one_stands_in_for(
    world: World, dan: User
) -> None:
    # given Alex's claimed review, and Rita's own request sent back to her for changes
    claimed = world.claimed_handoff
    changes = world.changes_requested
    client = client_for(dan)
    # then Dan, whom nobody delegated to, has no such list
    assert 'data-testid="standing-in"' not in client.get(DELEGATIONS).content.decode()
    # when Alex and Rita both delegate to Dan
    _delegate(world.user("approver"), dan)
    _delegate(world.user("requester"), dan)
    # then his page lists Alex's review, marked for Alex, and not Rita's own request
    items = _section(client.get(DELEGATIONS).content.decode(), "standing-in")
    assert f'data-request="{claimed.object_id}"' in items
    assert "for Alex" in items
    assert f'data-request="{changes.pk}"' not in items


def test_the_page_says_when_the_delegation_has_ended(world: World, dan: User) -> None:
    # given Dan approved one request for Alex, and another waits for Alex's group
    alex = world.user("approver")
    delegation = _delegate(alex, dan)
    other = world.new_request(title="Second")
    dan_client = client_for(dan)
    # and Dan is also a reviewer himself now, so he sees the second request anyway
    dan.groups.add(*alex.groups.all())
    # when Alex revokes the delegation
    delegation_revoke(actor=alex, delegation_id=delegation.pk)
    # then the page no longer offers anything for Alex, and says why
    html = dan_client.get(_detail(other)).content.decode()
    section = _section(html, "acting-for")
    assert "Your delegation from Alex ended on" in section
    assert "(revoked)" in section
    assert "for Alex</button>" not in html


def test_a_delegate_gets_nothing_for_the_delegators_own_request(world: World, dan: User) -> None:
    # given Rita delegated to Dan, and her request came back to her for changes
    _delegate(world.user("requester"), dan)
    req = world.changes_requested
    # when Dan opens it  /  then he may not: it is Rita's own
    assert client_for(dan).get(_detail(req)).status_code == 404
    # and a forged post to resubmit it for her changes nothing
    response = client_for(dan).post(
        reverse("approvals:request_action", args=[req.pk]),
        {"action": "resubmit", "version": req.version, "on_behalf_of": "rita"},
    )
    assert response.status_code == 404
    req.refresh_from_db()
    assert req.state == "changes_requested"


def test_an_action_posted_for_someone_who_delegated_nothing_is_refused(world: World) -> None:
    # given a request in review, which Maria (a manager) sees
    req = world.in_review
    # when the manager posts an approval "for Alex", who delegated nothing to her
    response = world.client("manager").post(
        reverse("approvals:request_action", args=[req.pk]),
        {"action": "approve", "version": req.version, "on_behalf_of": "alex", "comment": "x"},
    )
    # then 403 with the reason, and nothing changed
    assert response.status_code == 403
    assert "has not delegated this work to you" in _section(response.content.decode(), "problem")
    req.refresh_from_db()
    assert req.state == "in_review"


# --- the team view and reassigning ------------------------------------------------------------


@pytest.fixture
def finance() -> Any:
    return GroupFactory.create(name="finance")


def test_the_team_view_shows_the_teams_items_and_keeps_others_out(world: World) -> None:
    # given two requests waiting in the reviewers' queue (Alex's group; Alex is in Maria's team)
    first, second = world.in_review, world.new_request(title="A lamp")
    # when Maria opens the team view
    response = world.client("manager").get(TEAM)
    # then Alex and the reviewers' queue are listed, and both items, each to tick
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-member="alex"' in _section(html, "team-members")
    assert 'data-group="reviewers"' in html
    items = _section(html, "team-items")
    for req in (first, second):
        assert f'name="handoffs" value="{world.open_handoff(req).pk}"' in items
    # and people who may not see a team get 403 and none of it
    for role in ("requester", "approver", "auditor", "outsider"):
        refused = world.client(role).get(TEAM)
        assert refused.status_code == 403
        assert "A lamp" not in refused.content.decode()


def test_a_bad_team_filter_is_a_400_naming_it_and_lists_nothing(world: World) -> None:
    # given an item in the team's queue
    assert world.in_review.pk
    # when Maria filters by a due date that does not exist
    response = world.client("manager").get(TEAM, {"due": "yesterday"})
    # then 400, saying which filter and why, and no items
    assert response.status_code == 400
    assert "Unknown due filter" in response.content.decode()
    assert response.context["page"].rows == []


def test_a_manager_reassigns_two_items_from_the_team_view(world: World, finance: Any) -> None:
    # given two items in the reviewers' queue, and Fiona of finance
    reqs = [world.in_review, world.new_request(title="A lamp")]
    ids = [world.open_handoff(r).pk for r in reqs]
    client = world.client("manager")
    # when Maria ticks both and hands them to the finance group, saying why
    response = client.post(
        f"{reverse('approvals:team_reassign')}?sort=newest",
        {"handoffs": ids, "to_group": "finance", "reason": "Reviewers are away"},
    )
    # then she is sent back to the team view with her filters (post/redirect/get), told it worked
    assert response.status_code == 302
    assert response.headers["Location"] == f"{TEAM}?sort=newest"
    page = client.get(response.headers["Location"]).content.decode()
    assert f"Reassigned {reqs[0].reference}, {reqs[1].reference} to finance." in page
    # and both now wait for finance, the reason on record
    for req in reqs:
        assert world.open_handoff(req).candidate_group == finance
        assert (
            AuditEntry.objects.for_instance(req)
            .filter(action="reassign", comment="Reviewers are away")
            .exists()
        )


def test_a_bulk_reassignment_with_failures_shows_each_result_and_keeps_the_failed_ticked(
    world: World, finance: Any
) -> None:
    # given three items in the reviewers' queue: Rita's, Rex's, and one Alex approves
    # before Maria sends the form
    rex = UserFactory.create(
        username="rex", first_name="Rex", member_of=[world.user("requester").groups.get()]
    )
    ritas = world.in_review
    rexs = make_request(requester=rex, request_type=world.request_type, title="Rex's lamp")
    gone = world.new_request(title="Gone")
    ids = [world.open_handoff(r).pk for r in (ritas, rexs, gone)]
    request_act(request_id=gone.pk, action="approve", actor=world.user("approver"), comment="fine")
    # when Maria hands all three to Rita
    response = world.client("manager").post(
        reverse("approvals:team_reassign"), {"handoffs": ids, "to_user": "rita", "reason": "Away"}
    )
    # then the page comes back (409: the items failed for different reasons), saying what
    # became of each: Rex's went; Rita's own could not; the approved one had moved on
    assert response.status_code == 409
    html = response.content.decode()
    results = _section(html, "reassign-results")
    assert f'class="ok" data-handoff="{ids[0]}"' not in results
    assert f'class="failed" data-handoff="{ids[0]}"' in results
    assert "A request cannot be handed to its own requester." in results
    assert f'class="ok" data-handoff="{ids[1]}"' in results
    assert f'class="failed" data-handoff="{ids[2]}"' in results
    assert "already closed" in results
    # and Rita's, still in the team's queue, is still ticked, the form kept for another try
    assert response.context["selected"] == {ids[0], ids[2]}
    assert f'name="handoffs" value="{ids[0]}" id="pick-{ids[0]}" checked' in html
    assert "Away</textarea>" in html
    assert world.open_handoff(rexs).assignee == world.user("requester")
    assert world.open_handoff(ritas).assignee is None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"reason": ""}, "reason", "Say why the items are being reassigned."),
        ({"to_group": ""}, "to_user", "Choose a person or a group to hand the item to."),
        ({"to_group": "nope"}, "to_group", "There is no group named &#x27;nope&#x27;."),
        ({"to_group": "", "to_user": "ghost"}, "to_user", "Nobody has the user name &#x27;ghost&#x27;."),
        ({"handoffs": []}, "handoffs", "Choose at least one item to reassign."),
    ],
    ids=["no reason", "nobody to hand to", "unknown group", "unknown person", "nothing ticked"],
)
def test_a_bad_reassignment_is_shown_beside_its_field_and_changes_nothing(
    world: World, finance: Any, data: dict[str, Any], field: str, message: str
) -> None:
    # given an item in the team's queue
    req = world.in_review
    handoff = world.open_handoff(req)
    # when Maria reassigns it with one thing wrong
    posted = {"handoffs": [handoff.pk], "to_group": "finance", "reason": "Away", **data}
    response = world.client("manager").post(reverse("approvals:team_reassign"), posted)
    # then 400 with the error beside that field, and the item is as it was
    assert response.status_code == 400
    html = response.content.decode()
    if field == "handoffs":
        assert message in _section(html, "handoffs-error")
    else:
        assert message in html.split(f'data-field="{field}"', 1)[1].split('<div class="field', 1)[0]
    assert world.open_handoff(req) == handoff


def test_a_manager_reassigns_from_the_request_page(world: World, finance: Any) -> None:
    # given a request in review, and Fiona of finance
    req = world.in_review
    fiona = make_approver(finance, username="fiona2", first_name="Fiona")
    client = world.client("manager")
    # then its page offers to reassign it (to managers; not to the requester or an auditor)
    assert 'data-testid="reassign"' in client.get(_detail(req)).content.decode()
    for role in ("requester", "auditor", "approver"):
        assert 'data-testid="reassign"' not in world.client(role).get(_detail(req)).content.decode(), role
    url = reverse("approvals:request_reassign", args=[req.pk])
    handoff = world.open_handoff(req)
    # when Maria hands it to its own requester  /  then 400, saying why, nothing changed
    refused = client.post(url, {"handoffs": [handoff.pk], "to_user": "rita", "reason": "She knows"})
    assert refused.status_code == 400
    assert "A request cannot be handed to its own requester." in _section(refused.content.decode(), "problem")
    assert world.open_handoff(req) == handoff
    # when she hands it to Fiona
    response = client.post(url, {"handoffs": [handoff.pk], "to_user": "fiona2", "reason": "Finance question"})
    # then back to the page, where it is Fiona's
    assert response.status_code == 302
    assert response.headers["Location"] == _detail(req)
    assert world.open_handoff(req).assignee == fiona
    assert escape("Reassigned") in client.get(_detail(req)).content.decode()


def test_a_holder_passes_on_their_own_item_from_its_page(world: World) -> None:
    # given Alex claimed a review
    handoff = world.claimed_handoff
    req = ApprovalRequest.objects.get(pk=handoff.object_id)
    client = world.client("approver")
    # then its page offers him to pass it on, and he hands it to Maria
    assert 'data-testid="reassign"' in client.get(_detail(req)).content.decode()
    response = client.post(
        reverse("approvals:request_reassign", args=[req.pk]),
        {"handoffs": [handoff.pk], "to_user": "maria", "reason": "Holiday"},
    )
    assert response.status_code == 302
    assert Handoff.objects.for_instance(req).open().get().assignee == world.user("manager")
