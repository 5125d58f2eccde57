"""The request page for task stages: the task form built from the stage's outputs schema,
errors beside their fields, hand-backs with a reason, handover notes, and the outcome."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from tests.approvals.conftest import BrowserClient
from tests.approvals.policy_world import PolicyWorld, holders, load_demo_world

pytestmark = pytest.mark.django_db

IT_DONE = {"account_name": "slee", "email": "sam.lee@example.com"}


@pytest.fixture
def world() -> PolicyWorld:
    return load_demo_world()


def browser(world: PolicyWorld, who: str) -> Client:
    # Follows a refused post's 303 back to the page, as a browser does.
    client = BrowserClient()
    client.force_login(world[who])
    return client


def page_url(req: ApprovalRequest) -> str:
    return reverse("approvals:request_detail", args=[req.pk])


def act_url(req: ApprovalRequest) -> str:
    return reverse("approvals:request_action", args=[req.pk])


def approved_hire(world: PolicyWorld) -> ApprovalRequest:
    req = world.submit("onboarding")
    world.act(req, "approve", "maria")
    req.refresh_from_db()
    return req


def test_a_holder_sees_the_task_form_with_the_outputs_its_stage_asks_for(world):
    # given an onboarding waiting for IT, facilities and HR
    req = approved_hire(world)
    # when ivan of IT opens it
    html = browser(world, "ivan").get(page_url(req)).content.decode()
    # then he sees his task (and only his) with an input per output, required ones marked
    assert 'data-testid="task-it"' in html
    assert 'data-testid="task-hr"' not in html
    assert 'name="outputs.account_name"' in html
    assert 'name="outputs.email"' in html
    assert 'name="outputs.laptop_serial"' in html
    # and no decision buttons: the request waits for work, not for a decision
    assert 'value="approve"' not in html
    # when the requester opens it, she sees no task form at all
    assert 'data-testid="task-' not in browser(world, "rita").get(page_url(req)).content.decode()


def test_completing_a_task_on_the_page_hands_on_its_outputs_and_shows_them(world):
    req = approved_hire(world)
    client = browser(world, "ivan")
    # when ivan posts the task done with its outputs and a note
    response = client.post(
        act_url(req),
        {
            "action": "complete",
            "stage": "it",
            "version": req.version,
            "outputs.account_name": "slee",
            "outputs.email": "sam.lee@example.com",
            "comment": "Laptop is on the desk.",
        },
    )
    # then he is sent back to the page (post/redirect/get), the task is done
    assert response.status_code == 302
    assert response["Location"] == page_url(req)
    req.refresh_from_db()
    assert req.outputs["it"] == IT_DONE
    assert ("it", "group it") not in holders(req)
    # and what IT delivered is shown to the requester
    html = browser(world, "rita").get(page_url(req)).content.decode()
    assert 'data-testid="outcome"' in html
    assert "slee" in html
    # and the next holders (facilities) read IT's handover note at the top of their page
    html = browser(world, "faye").get(page_url(req)).content.decode()
    assert 'data-testid="handover-notes"' in html
    assert "Laptop is on the desk." in html
    assert html.index('data-testid="handover-notes"') < html.index('data-testid="task-facilities"')


def test_bad_outputs_come_back_beside_their_fields_and_nothing_is_done(world):
    req = approved_hire(world)
    # when ivan posts an account name with spaces and no e-mail
    response = browser(world, "ivan").post(
        act_url(req),
        {"action": "complete", "stage": "it", "version": req.version, "outputs.account_name": "Sam Lee"},
    )
    # then the page answers 400 with each error in the block of its input
    assert response.status_code == 400
    html = response.content.decode()
    account = re.search(r'data-field="outputs\.account_name".*?</div>\s*</div>', html, re.S)
    email = re.search(r'data-field="outputs\.email".*?</div>\s*</div>', html, re.S)
    assert account is not None
    assert "Not in the expected form." in account.group(0)
    assert email is not None
    assert "This field is required." in email.group(0)
    # and what he typed is kept, and nothing changed
    assert 'value="Sam Lee"' in html
    req.refresh_from_db()
    assert "it" not in req.outputs


def test_a_task_handed_back_needs_a_reason_and_ends_as_the_policy_says(world):
    req = approved_hire(world)
    client = browser(world, "hana")
    # when HR says it cannot be done without a reason
    missing = client.post(
        act_url(req), {"action": "hand_back", "stage": "hr", "version": req.version, "confirmed": "on"}
    )
    assert missing.status_code == 400
    assert "Say why it cannot be done." in missing.content.decode()
    # when it gives one
    done = client.post(
        act_url(req),
        {
            "action": "hand_back",
            "stage": "hr",
            "version": req.version,
            "comment": "The offer was declined.",
            "confirmed": "on",
        },
    )
    # then the onboarding ends, not fulfilled (as its policy says)
    assert done.status_code == 302
    req.refresh_from_db()
    assert req.state == "not_fulfilled"


@pytest.mark.parametrize("who", ["rita", "owen", "audrey", "faye"])
def test_someone_without_the_task_cannot_do_it_from_the_page(world, who):
    req = approved_hire(world)
    response = browser(world, who).post(
        act_url(req),
        {
            "action": "complete",
            "stage": "it",
            "version": req.version,
            "outputs.account_name": "x1",
            "outputs.email": "a@b.cd",
        },
    )
    # then a person who may see the request is refused with the reason; nobody learns more
    assert response.status_code in {403, 404}
    req.refresh_from_db()
    assert "it" not in req.outputs


def test_a_task_that_does_not_exist_is_a_clear_error(world):
    req = approved_hire(world)
    response = browser(world, "ivan").post(
        act_url(req), {"action": "complete", "stage": "nope", "version": req.version}
    )
    assert response.status_code == 400
    assert "There is no such task on this request." in response.content.decode()
