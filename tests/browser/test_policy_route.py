"""A multi-stage policy in a real Chromium against a real ASGI server, on the demo data.

"An expense claim of 4,200 by Rita goes to her manager Maria, then to finance (Fiona),
and is approved; the CFO stage (above 10,000) is skipped" — with a change-request loop
on the way, whose payload change the request page shows as a diff, and the route drawn
with each stage marked.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.models import User
from approvals.demo import DEMO_PASSWORD, demo_load
from approvals.models import ApprovalRequest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise serves static files with a sync iterator; under ASGI Django buffers them
    # and says so. Expected in the embedded mode, not a failure of the pages.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

TITLE = "Conference in Porto"


def _log_in(page: Page, username: str, full_name: str) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text(full_name)


def _signed_in(page: Page, *, url: str, username: str, full_name: str) -> None:
    """Start `page` with a session of `username` (the login form itself is tested for Rita)."""
    client = Client()
    client.force_login(User.objects.get(username=username))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": url}])
    page.goto("/")
    expect(page.get_by_test_id("current-user")).to_have_text(full_name)


def _stage(page: Page, name: str) -> str | None:
    """The data-status of one stage in the route diagram ('' when not reached)."""
    return page.locator(f"[data-testid=route] svg g[data-stage='{name}']").get_attribute("data-status") or ""


def _open_from_inbox(page: Page, req: ApprovalRequest, stage: str) -> None:
    page.goto("/inbox/")
    row = page.locator(f"[data-testid=inbox] tr[data-request='{req.pk}']")
    expect(row.get_by_test_id("stage")).to_have_text(stage)
    expect(row.get_by_test_id("due").locator("time")).to_have_count(1)  # the stage's SLA
    row.get_by_role("link").click()


def test_an_expense_claim_goes_through_manager_and_finance_past_a_change_request(
    new_page: Callable[[], Page], live_server_url: str
) -> None:
    # given the demo people and request types (Rita's manager is Maria; Fiona is finance)
    demo_load()
    rita, maria, fiona = new_page(), new_page(), new_page()
    _log_in(rita, "rita", "Rita Requester")
    _signed_in(maria, url=live_server_url, username="maria", full_name="Maria Manager")
    _signed_in(fiona, url=live_server_url, username="fiona", full_name="Fiona Finance")

    # when Rita picks "Expense claim" and fills in its form: 4,200 EUR
    rita.get_by_test_id("nav-new").click()
    rita.get_by_test_id("request-types").get_by_role("link", name="Expense claim").click()
    rita.get_by_label("Title").fill(TITLE)
    rita.get_by_label("Amount").fill("4200")
    rita.get_by_label("Currency").select_option("EUR")
    rita.get_by_label("Purpose").fill("Flights and two nights")
    rita.get_by_label("Spent on").fill("2026-03-02")
    rita.get_by_role("button", name="Submit for review").click()
    # then her claim is in review with her manager, the route highlighting that stage,
    # and the CFO stage already known not to apply
    expect(rita.get_by_test_id("state")).to_have_text("In review")
    expect(rita.get_by_test_id("held-by")).to_contain_text("Maria Manager")
    expect(rita.get_by_test_id("payload")).to_contain_text("EUR 4,200.00")  # the amount, in its currency
    assert (_stage(rita, "manager"), _stage(rita, "finance"), _stage(rita, "cfo")) == ("current", "", "")
    expect(rita.locator("[data-testid=route-steps] li[data-stage='cfo']")).to_contain_text("will be skipped")
    expect(rita.locator("[data-testid=lifecycle] g[data-state='in_review']")).to_have_attribute(
        "data-current", "true"
    )
    req = ApprovalRequest.objects.get(title=TITLE)
    assert req.payload == {
        "amount": 4200,
        "currency": "EUR",
        "purpose": "Flights and two nights",
        "spent_on": "2026-03-02",
    }

    # when Maria opens it from her inbox (stage "manager") and asks for a change
    _open_from_inbox(maria, req, "manager")
    maria.get_by_label("Comment").fill("The hotel was 100 less: correct the amount.")
    maria.get_by_role("button", name="Ask for changes").click()
    expect(maria.get_by_test_id("state")).to_have_text("Changes requested")

    # then Rita gets it back with the form prefilled, changes the amount and resubmits
    rita.reload()
    expect(rita.get_by_test_id("state")).to_have_text("Changes requested")
    resubmit = rita.get_by_test_id("resubmit-payload")
    expect(resubmit.get_by_label("Amount")).to_have_value("4200")
    expect(resubmit.get_by_label("Currency")).to_have_value("EUR")
    resubmit.get_by_label("Amount").fill("4100")
    rita.get_by_label("Comment").fill("Corrected.")
    rita.get_by_role("button", name="Resubmit").click()
    expect(rita.get_by_test_id("state")).to_have_text("In review")
    # and the page shows revision 2's diff: the amount, before and after
    diff = rita.locator("[data-testid=diff-2] tr[data-field='payload.amount']")
    expect(diff.locator(".label")).to_have_text("Amount")
    expect(diff.locator(".before")).to_have_text("4200")
    expect(diff.locator(".after")).to_have_text("4100")
    expect(rita.locator("[data-testid=diff-2] tbody tr")).to_have_count(1)

    # when Maria approves the new revision (her earlier say does not carry over)
    _open_from_inbox(maria, req, "manager")
    maria.get_by_label("Comment").fill("Thanks.")
    maria.get_by_role("button", name="Approve").click()
    expect(maria.get_by_role("status")).to_contain_text("is now In review")
    # then it moves on to finance, where Fiona finds it and approves
    _open_from_inbox(fiona, req, "finance")
    assert (_stage(fiona, "manager"), _stage(fiona, "finance")) == ("met", "current")
    fiona.get_by_label("Comment").fill("Booked for payment.")
    fiona.get_by_role("button", name="Approve").click()
    expect(fiona.get_by_role("status")).to_contain_text("is now Approved")

    # then Rita's page says approved, the route shows both stages met and the CFO skipped
    rita.reload()
    expect(rita.get_by_test_id("state")).to_have_text("Approved")
    assert (_stage(rita, "manager"), _stage(rita, "finance"), _stage(rita, "cfo")) == (
        "met",
        "met",
        "skipped",
    )
    expect(rita.locator("[data-testid=route-steps] li[data-stage='cfo']")).to_contain_text(
        "amount is 4100, so amount > 10000 is false"
    )
    expect(rita.locator("[data-testid=lifecycle] g[data-state='approved']")).to_have_attribute(
        "data-current", "true"
    )
    # and the decisions table lists who decided what, revision by revision
    decisions = rita.get_by_test_id("decisions")
    first = decisions.locator("tbody[data-revision='1'] tr[data-decision]")
    second = decisions.locator("tbody[data-revision='2'] tr[data-decision]")
    expect(first).to_have_count(1)
    expect(first.nth(0)).to_contain_text("Asked for changes")
    expect(second).to_have_count(2)
    expect(second.nth(0).locator(".actor")).to_have_text("Maria Manager")
    expect(second.nth(1).locator(".stage")).to_have_text("finance")
    expect(second.nth(1).locator(".actor")).to_have_text("Fiona Finance")
    req.refresh_from_db()
    assert (req.state, req.revision, req.payload["amount"]) == ("approved", 2, 4100)
