"""Webhooks in a real Chromium: a reviewer subscribes from their account page, copies the
secret shown once, a request is submitted, and a real receiver verifies the delivery
with that secret; the delivery log then shows it delivered."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import APPROVERS, REQUESTERS
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, make_request
from tests.webhook_receiver import WebhookReceiver, webhook_tasks_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_a_reviewer_subscribes_copies_the_secret_and_a_submission_arrives_verified(
    new_page: Callable[[], Page],
) -> None:
    reviewers = GroupFactory.create(name="reviewers")
    request_type = RequestTypeFactory.create(slug="general", name="General", approver_group=reviewers)
    UserFactory.create(
        username="alex", first_name="Alex", last_name="Approver", roles=[APPROVERS], member_of=[reviewers]
    )
    rita = UserFactory.create(username="rita", roles=[REQUESTERS])
    page = new_page()
    page.goto("/login/")
    page.get_by_label("User name").fill("alex")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text("Alex Approver")

    with WebhookReceiver(secrets=[]) as receiver:
        # when the reviewer goes from their account page to the webhooks and subscribes
        page.goto("/account/")
        page.get_by_test_id("account-webhooks").click()
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Request submitted").check()
        page.get_by_role("button", name="Create subscription").click()

        # then the secret is shown once, and they copy it into their receiver
        secret = page.get_by_test_id("webhook-secret-value").inner_text()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret)
        receiver.secrets.append(secret)
        page.reload()
        expect(page.get_by_test_id("webhook-secret")).to_have_count(0)

        # when a request is submitted and the worker runs the delivery
        make_request(requester=rita, request_type=request_type)
        assert webhook_tasks_run() == ["delivered"]

        # then the receiver verified it with the copied secret
        [received] = receiver.received
        assert received.verified_by == [0]
        assert received.payload["type"] == "request.submitted"

    # and the log on the page shows it delivered, with the receiver's answer
    page.reload()
    row = page.get_by_test_id("webhook-deliveries").locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Delivered")
    expect(row.get_by_test_id("webhook-attempt")).to_contain_text("HTTP 204")
