"""The first web slice in a real Chromium against a real ASGI server.

"A person can log in, submit a request, see it waiting in the approver's list, approve
or reject it with a comment, and see its history" — with the approver's inbox updating
live over its WebSocket.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.roles import APPROVERS, AUDITORS, REQUESTERS, ROLE_PERMISSIONS, roles_sync
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act, request_create
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise serves static files with a sync iterator; under ASGI Django buffers them
    # and says so. Expected in the embedded mode, not a failure of the pages.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def _people() -> tuple[RequestType, dict[str, User]]:
    found = {g.name: g for g in Group.objects.filter(name__in=ROLE_PERMISSIONS)}
    roles = found if len(found) == len(ROLE_PERMISSIONS) else roles_sync()
    reviewers = GroupFactory.create(name="reviewers")
    request_type = RequestTypeFactory.create(
        slug="equipment", name="Equipment", approver_group=reviewers, open_to_requesters=False
    )
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
    people = {
        "rita": UserFactory.create(
            username="rita", first_name="Rita", last_name="Requester", member_of=[roles[REQUESTERS]]
        ),
        "alex": UserFactory.create(
            username="alex", first_name="Alex", last_name="Approver", member_of=[roles[APPROVERS], reviewers]
        ),
        "audrey": UserFactory.create(
            username="audrey", first_name="Audrey", last_name="Auditor", member_of=[roles[AUDITORS]]
        ),
    }
    return request_type, people


def _log_in(page: Page, username: str, full_name: str) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text(full_name)


def _history(page: Page) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "[data-testid=history] li",
        """items => items.map(li => ({
            action: li.dataset.action,
            actor: li.querySelector('.actor')?.textContent.trim() ?? '',
            move: li.querySelector('.move')?.textContent.trim() ?? '',
            comment: li.querySelector('.comment')?.textContent.trim() ?? '',
        }))""",
    )


def test_a_request_goes_from_requester_to_approver_live_and_back(new_page: Callable[[], Page]) -> None:
    # given a requester and an approver of the type's group, each in their own browser
    _people()
    rita, alex = new_page(), new_page()
    _log_in(rita, "rita", "Rita Requester")
    _log_in(alex, "alex", "Alex Approver")
    # and the approver has his inbox open and listening, with nothing waiting
    alex.goto("/inbox/")
    expect(alex.get_by_test_id("inbox-empty")).to_be_visible()
    expect(alex.locator("body[data-live-connected='1']")).to_have_count(1)
    alex.evaluate("window.__sameDocument = true")

    # when the requester creates and submits a request
    rita.get_by_test_id("nav-new").click()
    rita.get_by_test_id("request-types").get_by_role("link", name="Equipment").click()
    rita.get_by_label("Title").fill("Standing desk")
    rita.get_by_label("Description").fill("For the back, 600 EUR.")
    rita.get_by_role("button", name="Submit for review").click()
    # then her request page says it is in review, held by the reviewers
    expect(rita.get_by_test_id("state")).to_have_text("In review")
    expect(rita.get_by_test_id("held-by")).to_contain_text("reviewers")
    req = ApprovalRequest.objects.get(title="Standing desk")
    # and it is listed under "My requests"
    rita.get_by_test_id("nav-mine").click()
    expect(rita.locator(f"[data-testid=my-requests] tr[data-request='{req.pk}']")).to_contain_text(
        "In review"
    )

    # then the approver's open inbox shows it without a reload (the WebSocket pushed it)
    row = alex.locator(f"[data-testid=inbox] tr[data-request='{req.pk}']")
    expect(row).to_contain_text("Standing desk")
    expect(row).to_contain_text("Rita Requester")
    assert alex.evaluate("window.__sameDocument") is True

    # when the requester watches her request page, and the approver opens it
    rita.goto(f"/requests/{req.pk}/")
    expect(rita.locator("body[data-live-connected='1']")).to_have_count(1)
    rita.evaluate("window.__sameDocument = true")
    row.get_by_role("link").click()
    expect(alex.get_by_test_id("state")).to_have_text("In review")
    # and he rejects it, confirming without a reason
    alex.get_by_role("button", name="Reject").click()
    expect(alex.get_by_test_id("confirm")).to_contain_text("This cannot be undone.")
    alex.get_by_test_id("confirm-button").click()
    # then the comment field says a reason is needed, and the request is still in review
    expect(alex.get_by_test_id("comment-field")).to_contain_text("Say why you reject it.")
    expect(alex.get_by_test_id("state")).to_have_text("In review")

    # when he approves it with a comment instead
    alex.get_by_label("Comment").fill("Fine, within budget.")
    alex.get_by_role("button", name="Approve").click()
    expect(alex.get_by_role("status")).to_contain_text("is now Approved")

    # then the requester's open page shows it approved in place, saying who did it
    expect(rita.get_by_test_id("state")).to_have_text("Approved")
    expect(rita.get_by_test_id("live-notice")).to_have_text(f"Alex Approver approved {req.reference}")
    assert rita.evaluate("window.__sameDocument") is True
    # and the approver's own page shows no notice for his own action
    expect(alex.get_by_test_id("live-notice")).to_be_hidden()
    expect(rita.get_by_test_id("held-by")).to_contain_text("nobody")
    # and its history lists create, submit and approve, with the approver's name and comment
    assert [(h["action"], h["actor"], h["move"], h["comment"]) for h in _history(rita)] == [
        ("create", "Rita Requester", "— → Draft", ""),
        ("submit", "Rita Requester", "Draft → In review", ""),
        ("approve", "Alex Approver", "In review → Approved", "Fine, within budget."),
    ]
    # and she has nothing to act on any more
    expect(rita.get_by_test_id("actions")).to_have_count(0)


def test_an_auditor_reads_every_request_and_its_history_but_cannot_act(new_page: Callable[[], Page]) -> None:
    # given one request approved and one still in review
    request_type, people = _people()
    done = request_create(requester=people["rita"], request_type=request_type, title="Monitor")
    request_act(request_id=done.pk, action="approve", actor=people["alex"], comment="Granted")
    waiting = request_create(requester=people["rita"], request_type=request_type, title="Keyboard")
    auditor = new_page()
    # when the auditor logs in and opens "All requests"
    _log_in(auditor, "audrey", "Audrey Auditor")
    auditor.get_by_test_id("nav-all").click()
    # then both requests are listed, newest first, with their states
    rows = auditor.locator("[data-testid=all-requests] tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Keyboard")
    expect(rows.nth(0)).to_contain_text("In review")
    expect(rows.nth(1)).to_contain_text("Monitor")
    expect(rows.nth(1)).to_contain_text("Approved")
    # when she filters by state
    auditor.get_by_label("State").select_option(label="Approved")
    auditor.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("Monitor")

    # when she opens the approved one
    rows.nth(0).get_by_role("link").click()
    # then she reads its history, with who decided and why
    expect(auditor.get_by_test_id("state")).to_have_text("Approved")
    assert [(h["action"], h["actor"], h["comment"]) for h in _history(auditor)] == [
        ("create", "Rita Requester", ""),
        ("submit", "Rita Requester", ""),
        ("approve", "Alex Approver", "Granted"),
    ]
    # and on the one still in review she is offered no action at all
    auditor.goto(f"/requests/{waiting.pk}/")
    expect(auditor.get_by_test_id("state")).to_have_text("In review")
    expect(auditor.get_by_test_id("actions")).to_have_count(0)
    expect(auditor.get_by_role("button", name="Approve")).to_have_count(0)
    expect(auditor.get_by_role("button", name="Claim")).to_have_count(0)
