"""A new hire's onboarding in a real Chromium against a real ASGI server, on the demo data.

Rita asks for Sam's onboarding; Maria (the hiring manager) approves; Ivan (IT), Faye
(facilities) and Hana (HR) each do their part at the same time, in their own browsers,
handing on what they did; the request is fulfilled and Rita sees what was delivered.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from approvals.demo import demo_load
from approvals.models import ApprovalRequest
from tests.browser.test_policy_route import _log_in, _signed_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def _do_task(page: Page, url: str, stage: str, outputs: dict[str, str], note: str) -> None:
    page.goto(url)
    task = page.get_by_test_id(f"task-{stage}")
    expect(task).to_be_visible()
    for label, value in outputs.items():
        field = task.get_by_label(label)
        if field.evaluate("e => e.type") == "checkbox":
            field.check()
        else:
            field.fill(value)
    task.get_by_label("Note for whoever is next").fill(note)
    task.get_by_role("button", name="Mark the task done").click()
    expect(page.get_by_role("status")).to_contain_text(f"Task {stage} done.")


def test_an_onboarding_goes_from_submission_to_fulfilled_with_three_tasks_in_parallel(
    new_page: Callable[[], Page], live_server_url: str
) -> None:
    # given the demo people: Rita asks, Maria approves, Ivan, Faye and Hana do the work
    demo_load()
    rita, maria, ivan, faye, hana = new_page(), new_page(), new_page(), new_page(), new_page()
    _log_in(rita, "rita", "Rita Requester")
    for page, who, name in (
        (maria, "maria", "Maria Manager"),
        (ivan, "ivan", "Ivan IT"),
        (faye, "faye", "Faye Facilities"),
        (hana, "hana", "Hana HR"),
    ):
        _signed_in(page, url=live_server_url, username=who, full_name=name)

    # when Rita asks for the onboarding of Kim
    rita.get_by_test_id("nav-new").click()
    rita.get_by_test_id("request-types").get_by_role("link", name="New-hire onboarding").click()
    rita.locator("#id_title").fill("Onboarding: Kim Park")
    rita.get_by_label("New colleague").fill("Kim Park")
    rita.get_by_label("First day").fill("2026-12-21")
    rita.get_by_label("Job title").fill("Data analyst")
    rita.get_by_role("button", name="Submit for review").click()
    expect(rita.get_by_test_id("state")).to_have_text("In review")
    url = rita.url
    req = ApprovalRequest.objects.get(title="Onboarding: Kim Park")

    # and Maria approves it
    maria.goto(url)
    maria.get_by_label("Comment").fill("Welcome, Kim.")
    maria.get_by_role("button", name="Approve").click()
    expect(maria.get_by_test_id("state")).to_have_text("Approved")

    # then IT, facilities and HR each hold their part at once
    req.refresh_from_db()
    assert req.in_fulfilment
    _do_task(
        hana,
        url,
        "hr",
        {"Employee ID": "E20417", "Contract signed": "yes"},
        "Contract is in the shared drive.",
    )
    _do_task(
        ivan,
        url,
        "it",
        {"Account name": "kpark", "E-mail address": "kim.park@example.com"},
        "Password in the welcome envelope.",
    )
    # Faye, last, reads the notes the others left for whoever holds it next
    faye.goto(url)
    expect(faye.get_by_test_id("handover-notes")).to_contain_text("Password in the welcome envelope.")
    _do_task(faye, url, "facilities", {"Desk": "4.02", "Badge number": "30518"}, "Badge at the front desk.")

    # then the request is fulfilled, and Rita sees what was approved and what was delivered
    rita.goto(url)
    expect(rita.get_by_test_id("state")).to_have_text("Fulfilled")
    outcome = rita.get_by_test_id("outcome")
    expect(outcome).to_contain_text("Outcome: approved and delivered")
    expect(outcome.locator("[data-stage=it]")).to_contain_text("kpark")
    expect(outcome.locator("[data-stage=facilities]")).to_contain_text("30518")
    expect(outcome.locator("[data-stage=hr]")).to_contain_text("E20417")
    req.refresh_from_db()
    assert req.state == "fulfilled"
    assert set(req.outputs) == {"it", "facilities", "hr"}
