"""A manager's day in a real Chromium: reassign two items from the team view, set an
out-of-office for a team member, and the delegate acts for that member.

"A manager reassigns two items and sets an out-of-office, and the delegate acts for them."
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm
from playwright.sync_api import Page, expect

from accounts.models import Delegation, Team, TeamMembership, User
from accounts.roles import APPROVERS, MANAGERS, REQUESTERS, ROLE_PERMISSIONS, roles_sync
from approvals.models import ApprovalRequest
from approvals.services import request_create
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory
from workflows.models import AuditEntry, Handoff

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise serves static files with a sync iterator; under ASGI Django buffers them
    # and says so. Expected in the embedded mode, not a failure of the pages.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def _world() -> list[ApprovalRequest]:
    """Maria manages a team of two reviewers, Alex and Bea; Rita asked for three things."""
    found = {g.name: g for g in Group.objects.filter(name__in=ROLE_PERMISSIONS)}
    roles = found if len(found) == len(ROLE_PERMISSIONS) else roles_sync()
    reviewers = GroupFactory.create(name="reviewers")
    request_type = RequestTypeFactory.create(
        slug="equipment", name="Equipment", approver_group=reviewers, open_to_requesters=False
    )
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)

    def person(username: str, first: str, last: str, *groups: Group) -> User:
        return UserFactory.create(username=username, first_name=first, last_name=last, member_of=list(groups))

    rita = person("rita", "Rita", "Requester", roles[REQUESTERS])
    maria = person("maria", "Maria", "Manager", roles[MANAGERS])
    alex = person("alex", "Alex", "Approver", roles[APPROVERS], reviewers)
    bea = person("bea", "Bea", "Reviewer", roles[APPROVERS], reviewers)
    person("dan", "Dan", "Deputy")
    team = Team.objects.create(name="Operations", slug="operations")
    TeamMembership.objects.create(team=team, user=maria, is_manager=True)
    for member in (alex, bea):
        TeamMembership.objects.create(team=team, user=member)
    return [
        request_create(requester=rita, request_type=request_type, title=title)
        for title in ("Standing desk", "Monitor arm", "Headset")
    ]


def _log_in(page: Page, username: str, full_name: str) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text(full_name)


def test_a_manager_reassigns_sets_an_out_of_office_and_the_delegate_acts_for_the_member(
    new_page: Callable[[], Page],
) -> None:
    desk, arm, headset = _world()
    maria, dan = new_page(), new_page()
    _log_in(maria, "maria", "Maria Manager")

    # when the manager opens her team view
    maria.get_by_test_id("nav-team").click()
    items = maria.get_by_test_id("team-items")
    # then the reviewers' queue and its three items are there, oldest first
    expect(maria.get_by_test_id("team-groups").locator("tr[data-group='reviewers']")).to_contain_text("3")
    expect(items.locator("tbody tr")).to_have_count(3)
    # when she ticks the desk and the monitor arm, and hands them to Bea, saying why
    maria.get_by_label(f"Choose {desk.reference}").check()
    maria.get_by_label(f"Choose {arm.reference}").check()
    maria.get_by_label("To a person (user name)").fill("bea")
    maria.get_by_label("Why").fill("Bea knows the furniture budget")
    maria.get_by_role("button", name="Reassign chosen").click()
    # then the page says both went to Bea, and Bea now holds two while the headset waits
    expect(maria.get_by_role("status")).to_contain_text(
        f"Reassigned {desk.reference}, {arm.reference} to Bea Reviewer."
    )
    expect(
        maria.get_by_test_id("team-members").locator("tr[data-member='bea'] [data-testid=open]")
    ).to_have_text("2")
    for req in (desk, arm):
        assert (
            Handoff.objects.for_instance(req).open().values_list("assignee__username", flat=True).get()
            == "bea"
        )

    # when she sets an out-of-office for Bea: Dan stands in, on every request type
    maria.get_by_test_id("nav-delegations").click()
    maria.get_by_label("Whose work").select_option("bea")
    maria.get_by_label("Delegate (user name)").fill("dan")
    maria.get_by_label("Reason (shown to them)").fill("Bea is on leave")
    maria.get_by_role("button", name="Set up delegation").click()
    # then it is listed as open, Bea's, set up by Maria
    expect(maria.get_by_role("status")).to_contain_text("Dan Deputy now stands in for Bea Reviewer's work")
    opened = maria.get_by_test_id("open-delegations").locator("tbody tr")
    expect(opened).to_have_count(1)
    expect(opened).to_contain_text("Bea Reviewer")
    expect(opened).to_contain_text("by Maria Manager")
    assert Delegation.objects.values_list("created_by__username", flat=True).get() == "maria"

    # when Dan logs in and opens his delegations page
    _log_in(dan, "dan", "Dan Deputy")
    dan.get_by_test_id("nav-delegations").click()
    # then what waits for Bea is listed, marked for her (not the headset, still the queue's)
    waiting = dan.get_by_test_id("standing-in-items").locator("tbody tr")
    expect(waiting).to_have_count(2)
    expect(waiting.first).to_contain_text("for Bea Reviewer")
    # when he opens the desk request
    dan.get_by_role("link", name=f"{desk.reference}: Standing desk").click()
    # then the page offers Bea's actions, each marked for her, and nothing of his own
    acting = dan.get_by_test_id("acting-for")
    expect(acting).to_contain_text("For Bea Reviewer")
    expect(dan.get_by_test_id("actions")).to_have_count(0)
    # when he approves it for Bea with a comment
    acting.get_by_label("Comment").fill("Approved for Bea while she is away.")
    acting.get_by_role("button", name="Approve for Bea Reviewer").click()
    # then it is approved, and the history shows both people
    expect(dan.get_by_role("status")).to_contain_text("Done: approve for Bea Reviewer.")
    expect(dan.get_by_test_id("state")).to_have_text("Approved")
    approve = dan.get_by_test_id("history").locator("li[data-action='approve']")
    expect(approve.locator(".actor")).to_have_text("Dan Deputy")
    expect(approve.locator(".principal")).to_have_text("Bea Reviewer")
    reassign = dan.get_by_test_id("history").locator("li[data-action='reassign']")
    expect(reassign.locator(".actor")).to_have_text("Maria Manager")
    expect(reassign).to_contain_text("Bea knows the furniture budget")
    entry = AuditEntry.objects.for_instance(desk).filter(action="approve")
    assert list(entry.values_list("actor__username", "on_behalf_of__username")) == [("dan", "bea")]
    headset.refresh_from_db()
    assert headset.state == "in_review"
