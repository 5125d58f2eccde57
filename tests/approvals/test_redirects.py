"""After claiming or releasing an item the page goes back where the person came from,
but only to a page of this site: never an open redirect."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_request
from workflows.models import Handoff

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "\\\\evil.example",
        "//evil.example",
        "https://evil.example",
        "http://evil.example/inbox/",
        "javascript:alert(1)",
    ],
)
def test_a_claim_never_sends_the_browser_to_another_site(requester, approver, request_type, target):
    # given an approver and a request offered to their group
    request = make_request(requester=requester, request_type=request_type)
    handoff = Handoff.objects.for_instance(request).open().get()
    client = Client()
    client.force_login(approver)

    # when they claim it from a form whose `next` points elsewhere
    response = client.post(reverse("approvals:handoff_claim", args=[handoff.pk]), {"next": target})

    # then the claim is made and they land in their inbox, not on that address
    assert response.status_code == 302
    assert response["Location"] == reverse("approvals:inbox")
    handoff.refresh_from_db()
    assert handoff.assignee_id == approver.pk


def test_a_claim_goes_back_to_a_page_of_this_site(requester, approver, request_type):
    # given an approver and a request offered to their group
    request = make_request(requester=requester, request_type=request_type)
    handoff = Handoff.objects.for_instance(request).open().get()
    client = Client()
    client.force_login(approver)
    page = reverse("approvals:request_detail", args=[request.pk])

    # when they claim it from the request's page  /  then they are taken back to it
    response = client.post(reverse("approvals:handoff_claim", args=[handoff.pk]), {"next": page})
    assert (response.status_code, response["Location"]) == (302, page)
    # and releasing it from there goes back there too
    response = client.post(reverse("approvals:handoff_unclaim", args=[handoff.pk]), {"next": page})
    assert (response.status_code, response["Location"]) == (302, page)
