"""Mail as each person prefers it: at once, in a daily digest in their local morning, or none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from approvals.mailing import digests_send, mail_dispatch, mail_preferences_save
from approvals.models import MailPreference, Notification
from approvals.notifications import notify_transition
from approvals.services import request_act
from approvals.timers.notices import notices_send
from tests.approvals.conftest import World
from tests.mail_support import mail_tasks_run
from workflows import errors
from workflows.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _notify_last_transition(request_id: int) -> None:
    """Run the notification tasks the outbox holds for this request (as the worker would)."""
    for event in OutboxEvent.objects.filter(
        kind=OutboxEvent.Kind.TASK, payload__kwargs__request_id=request_id
    ).order_by("created_at"):
        kwargs = event.payload["kwargs"]
        notify_transition(
            request_id=kwargs["request_id"],
            action=kwargs["action"],
            audit_seq=kwargs["audit_seq"],
            event_id=str(event.pk),
        )


def test_a_new_handoff_mails_the_approver_at_once_by_default(
    world: World, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    req = world.new_request(title="Desk")
    with django_capture_on_commit_callbacks(execute=True):
        _notify_last_transition(req.pk)
    mail_tasks_run()
    assert [m.to for m in mail.outbox] == [[world.user("approver").email]]
    assert "waits for you" in mail.outbox[0].subject
    assert Notification.objects.get(kind=Notification.Kind.HANDOFF).mailed_at is not None


def test_off_means_the_bell_only_and_digest_means_later(world: World, django_capture_on_commit_callbacks):
    approver, requester = world.user("approver"), world.user("requester")
    mail_preferences_save(user=approver, time_zone="", choices={"handoff": "off"})
    mail_preferences_save(
        user=requester, time_zone="Europe/Berlin", choices={"decision": "digest", "closed": "digest"}
    )
    mail.outbox.clear()
    req = world.new_request(title="Chair")
    with django_capture_on_commit_callbacks(execute=True):
        _notify_last_transition(req.pk)
        request_act(request_id=req.pk, action="approve", actor=approver)
        _notify_last_transition(req.pk)
    mail_tasks_run()
    # then the approver's item is in the bell but not mailed; the requester's news waits
    assert mail.outbox == []
    assert (
        Notification.objects.filter(recipient=approver, kind="handoff", mailed_at__isnull=True).count() == 1
    )
    pending = Notification.objects.get(recipient=requester)
    assert (pending.digest_pending, pending.mailed_at) == (True, None)


def test_the_digest_goes_out_once_in_the_persons_local_morning(
    world: World, django_capture_on_commit_callbacks
):
    # given a requester in New York (UTC-5 in January) who gets decisions in a digest
    requester = world.user("requester")
    mail_preferences_save(user=requester, time_zone="America/New_York", choices={"closed": "digest"})
    req = world.new_request(title="Lamp")
    note = Notification.objects.create(
        recipient=requester,
        request=req,
        event_id="e1",
        kind="closed",
        text="approved",
        subject=f"{req.reference} approved by Alex",
        body="...",
        created_at=datetime(2027, 1, 11, 20, 0, tzinfo=UTC),
    )
    mail_dispatch([note])
    mail_tasks_run()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        # 08:30 UTC is 03:30 in New York: not yet; 13:10 UTC is 08:10 there: now, once
        early = digests_send(now=datetime(2027, 1, 12, 8, 30, tzinfo=UTC))
        on_time = digests_send(now=datetime(2027, 1, 12, 13, 10, tzinfo=UTC))
        again = digests_send(now=datetime(2027, 1, 12, 13, 50, tzinfo=UTC))
    mail_tasks_run()
    assert (early, on_time, again) == (0, 1, 0)
    (digest,) = mail.outbox
    assert digest.to == [requester.email]
    assert digest.subject == "Baton daily digest: 1 update"
    assert f"{req.reference} approved by Alex" in digest.body
    assert "Mon 11 Jan 15:00" in digest.body  # the time in the reader's zone
    note.refresh_from_db()
    assert (note.digest_pending, note.mailed_at) == (False, datetime(2027, 1, 12, 13, 10, tzinfo=UTC))


def test_the_preferences_page_saves_and_names_a_bad_time_zone(world: World) -> None:
    client = world.client("approver")
    page = client.get("/settings/mail/")
    assert page.status_code == 200
    assert 'name="kind_reminder"' in page.content.decode()
    response = client.post("/settings/mail/", {"time_zone": "Mars/Olympus", "kind_handoff": "digest"})
    assert response.status_code == 400
    assert "&#x27;Mars/Olympus&#x27; is not a known time zone" in response.content.decode()
    assert not MailPreference.objects.exists()
    response = client.post("/settings/mail/", {"time_zone": "Europe/Berlin", "kind_handoff": "digest"})
    assert response.status_code == 302
    approver = User.objects.get(pk=world.user("approver").pk)
    assert approver.time_zone == "Europe/Berlin"
    assert MailPreference.objects.get(user=approver, kind="handoff").delivery == "digest"


def test_an_unknown_delivery_is_refused_by_name(world: World) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        mail_preferences_save(
            user=world.user("approver"), time_zone="", choices={"handoff": "carrier-pigeon"}
        )
    assert list(caught.value.field_errors) == ["kind_handoff"]


def test_reminders_follow_the_preference_too(world: World, django_capture_on_commit_callbacks) -> None:
    approver = world.user("approver")
    mail_preferences_save(user=approver, time_zone="", choices={"reminder": "digest"})
    req = world.new_request()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notices_send(request=req, people=[approver.pk], kind="reminder", key="k", text="reminder", body="b")
    mail_tasks_run()
    assert mail.outbox == []
    assert Notification.objects.get(event_id="k").digest_pending is True
    assert timezone.now() - Notification.objects.get(event_id="k").created_at < timedelta(minutes=1)
