"""Action links in mail: signed, single-use, expiring, bound to one person and request;
GET only shows a confirmation page, the POST acts; bad links explain themselves."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.shortcuts import resolve_url
from django.utils import timezone

from approvals.action_links import action_link_make
from approvals.actions import Action
from approvals.models import ActionLinkUse, ApprovalRequest, State
from approvals.notifications import notify_transition
from tests.approvals.conftest import World
from tests.mail_support import mail_tasks_run
from workflows.models import AuditEntry, OutboxEvent

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return urlsplit(url).path


def _link(world: World, req: ApprovalRequest, action: Action = Action.APPROVE, **kwargs: Any) -> str:
    return _path(action_link_make(user=world.user("approver"), request=req, action=action, **kwargs))


def _state(req: ApprovalRequest) -> str:
    return ApprovalRequest.objects.get(pk=req.pk).state


def test_the_new_handoff_mail_carries_approve_and_reject_links(world: World) -> None:
    req = world.new_request(title="Desk")
    mail.outbox.clear()
    event = OutboxEvent.objects.get(kind=OutboxEvent.Kind.TASK, payload__kwargs__request_id=req.pk)
    kwargs = event.payload["kwargs"]
    notify_transition(
        request_id=req.pk, action=kwargs["action"], audit_seq=kwargs["audit_seq"], event_id=str(event.pk)
    )
    mail_tasks_run()
    (message,) = mail.outbox
    links = re.findall(r"^(Approve|Reject): (\S+)$", str(message.body), flags=re.MULTILINE)
    assert [name for name, _ in links] == ["Approve", "Reject"]
    # and following the approve link, then confirming, approves it
    client = world.client("approver")
    page = client.get(_path(links[0][1]))
    assert page.status_code == 200
    assert client.post(_path(links[0][1]), {"comment": ""}).status_code == 302
    assert _state(req) == State.APPROVED


def test_opening_a_link_shows_a_confirmation_and_changes_nothing(world: World) -> None:
    req = world.new_request()
    link = _link(world, req)
    client = world.client("approver")
    # when the link is opened (as a mail scanner would) twice
    first, second = client.get(link), client.get(link)
    # then both show the confirmation page, and nothing happened
    assert (first.status_code, second.status_code) == (200, 200)
    assert f"Approve {req.reference}?" in first.content.decode()
    assert 'data-testid="confirm-button"' in first.content.decode()
    assert _state(req) == State.IN_REVIEW
    assert not ActionLinkUse.objects.exists()


def test_the_post_acts_once_and_a_reused_link_explains_itself(world: World) -> None:
    req = world.new_request()
    link = _link(world, req)
    client = world.client("approver")
    response = client.post(link, {"comment": "fine"})
    assert response.status_code == 302
    assert _state(req) == State.APPROVED
    entry = AuditEntry.objects.for_instance(req).get(action="approve")
    assert (entry.actor_id, entry.comment) == (world.user("approver").pk, "fine")
    # when it is used again
    again = client.post(link, {"comment": "fine"})
    opened = client.get(link)
    assert (again.status_code, opened.status_code) == (410, 410)
    assert "This link was used already" in again.content.decode()
    assert AuditEntry.objects.for_instance(req).filter(action="approve").count() == 1


def test_an_expired_link_explains_itself_and_does_nothing(world: World) -> None:
    req = world.new_request()
    link = _link(world, req, now=timezone.now() - timedelta(days=8))
    response = world.client("approver").post(link, {"comment": ""})
    assert response.status_code == 410
    assert "This link has expired: links work for 7 days" in response.content.decode()
    assert _state(req) == State.IN_REVIEW


def test_a_forwarded_link_does_nothing_for_another_logged_in_person(world: World) -> None:
    req = world.new_request()
    link = _link(world, req)
    other = world.client("other_approver")
    for response in (other.get(link), other.post(link, {"comment": ""})):
        assert response.status_code == 403
        assert "This link was sent to Alex, not to you" in response.content.decode()
    assert _state(req) == State.IN_REVIEW
    # and the person it was sent to can still use it
    assert world.client("approver").post(link, {"comment": ""}).status_code == 302


def test_an_altered_link_explains_itself(world: World) -> None:
    req = world.new_request()
    link = _link(world, req)
    broken = link[:-3] + ("x" if link[-3] != "x" else "y") + link[-2:]
    response = world.client("approver").get(broken)
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()


def test_a_reject_link_asks_for_a_reason_and_keeps_the_link_usable(world: World) -> None:
    req = world.new_request()
    link = _link(world, req, Action.REJECT)
    client = world.client("approver")
    missing = client.post(link, {"comment": ""})
    assert missing.status_code == 400
    assert "Say why you reject it. Nothing was changed." in missing.content.decode()
    assert not ActionLinkUse.objects.exists()
    assert client.post(link, {"comment": "Too dear"}).status_code == 302
    assert _state(req) == State.REJECTED


def test_a_link_for_a_request_decided_meanwhile_says_so(world: World) -> None:
    req = world.new_request()
    link = _link(world, req)
    client = world.client("approver")
    client.post(_link(world, req), {"comment": ""})  # decided through another link
    response = client.post(link, {"comment": ""})
    assert response.status_code == 409
    assert "Nothing was changed." in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(world: World) -> None:
    req = world.new_request()
    response = world.client("anonymous").get(_link(world, req))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{resolve_url(settings.LOGIN_URL)}?next=")
