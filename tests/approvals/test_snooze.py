"""Snooze: the holder puts an item aside until a follow-up time; it leaves the active inbox
and comes back then with a notice."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import Notification
from approvals.timers import snoozes_wake, timers_scan
from tests.approvals.conftest import World
from workflows import errors
from workflows.models import AuditEntry, Handoff, OutboxEvent
from workflows.services import handoff_snooze

pytestmark = pytest.mark.django_db

INBOX = "/inbox/"


def _rows(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr[^>]* data-request="(\d+)"', response.content.decode())]


def test_a_snoozed_item_leaves_the_active_inbox_until_its_follow_up_time(world: World) -> None:
    # given an item the approver claimed, and another one in their queue
    handoff = world.claimed_handoff
    other = world.new_request(title="Other")
    client = world.client("approver")
    now = timezone.now()
    # when they snooze the claimed one until tomorrow
    handoff_snooze(handoff_id=handoff.pk, actor=world.user("approver"), until=now + timedelta(days=1))
    # then the inbox shows only the other one; the snoozed tab lists it
    assert _rows(client.get(INBOX)) == [other.pk]
    assert _rows(client.get(INBOX, {"view": "snoozed"})) == [int(handoff.object_id)]
    assert 'data-testid="count-snoozed">1<' in client.get(INBOX).content.decode()
    # and the snooze is on the record
    entry = AuditEntry.objects.filter(action="snooze").get()
    assert (entry.actor_id, entry.data["handoff"]) == (world.user("approver").pk, handoff.pk)


def test_at_its_follow_up_time_the_item_comes_back_with_a_notice_once(world: World) -> None:
    handoff = world.claimed_handoff
    until = timezone.now() + timedelta(hours=3)
    handoff_snooze(handoff_id=handoff.pk, actor=world.user("approver"), until=until)
    # when the scan runs before, at, and after the follow-up time
    before = snoozes_wake(now=until - timedelta(minutes=1))
    at = timers_scan(now=until)
    after = snoozes_wake(now=until + timedelta(hours=1))
    # then it woke once, with one notice and a live update of the holder's inbox
    assert (before.total, at.get("woken"), after.total) == (0, 1, 0)
    notices = Notification.objects.filter(kind=Notification.Kind.FOLLOW_UP)
    assert list(notices.values_list("recipient__username", "text")) == [
        ("alex", "back from snooze: it waits for you again")
    ]
    assert OutboxEvent.objects.filter(
        destination=f"inbox.user.{world.user('approver').pk}", payload__action="wake"
    ).exists()
    assert Handoff.objects.get(pk=handoff.pk).snoozed_until is None
    assert int(handoff.object_id) in _rows(world.client("approver").get(INBOX))


def test_only_the_assignee_snoozes_and_only_into_the_future(world: World) -> None:
    handoff = world.claimed_handoff
    now = timezone.now()
    with pytest.raises(errors.Forbidden):
        handoff_snooze(
            handoff_id=handoff.pk, actor=world.user("other_approver"), until=now + timedelta(days=1)
        )
    with pytest.raises(errors.InvalidInput) as past:
        handoff_snooze(handoff_id=handoff.pk, actor=world.user("approver"), until=now - timedelta(minutes=1))
    with pytest.raises(errors.InvalidInput) as far:
        handoff_snooze(handoff_id=handoff.pk, actor=world.user("approver"), until=now + timedelta(days=400))
    assert (past.value.field_errors, far.value.field_errors) == (
        {"until": ["Choose a time in the future."]},
        {"until": ["At most 365 days ahead."]},
    )
    assert Handoff.objects.get(pk=handoff.pk).snoozed_until is None


def test_the_request_page_form_snoozes_and_wakes(world: World) -> None:
    handoff = world.claimed_handoff
    client = world.client("approver")
    url = f"/handoffs/{handoff.pk}/snooze/"
    page = f"/requests/{handoff.object_id}/"
    assert 'data-testid="snooze-form"' in client.get(page).content.decode()
    # when they pick a time on the request's page
    future = timezone.localtime(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {"until": future, "next": page})
    assert response.status_code == 302
    assert Handoff.objects.get(pk=handoff.pk).snoozed_until is not None
    assert 'data-testid="snoozed-until"' in client.get(page).content.decode()
    # and wake it again
    client.post(url, {"wake": "on", "next": page})
    assert Handoff.objects.get(pk=handoff.pk).snoozed_until is None


def test_the_inbox_row_button_snoozes_until_tomorrow_morning(world: World) -> None:
    handoff = world.claimed_handoff
    client = world.client("approver")
    assert 'data-testid="snooze"' in client.get(INBOX).content.decode()
    response = client.post(f"/handoffs/{handoff.pk}/snooze/?preset=tomorrow", {"next": INBOX})
    assert response.status_code == 302
    until = timezone.localtime(Handoff.objects.get(pk=handoff.pk).snoozed_until)
    assert (until.date(), until.hour, until.minute) == (
        timezone.localtime(timezone.now()).date() + timedelta(days=1),
        9,
        0,
    )


def test_a_bad_snooze_form_names_the_field_and_changes_nothing(world: World) -> None:
    handoff = world.claimed_handoff
    client = world.client("approver")
    response = client.post(f"/handoffs/{handoff.pk}/snooze/", {"until": "someday"})
    assert response.status_code == 400
    assert "Snooze refused: Enter a valid date/time." in response.content.decode()
    past = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/handoffs/{handoff.pk}/snooze/", {"until": past})
    assert response.status_code == 400
    assert "Choose a time in the future." in response.content.decode()
    assert Handoff.objects.get(pk=handoff.pk).snoozed_until is None
