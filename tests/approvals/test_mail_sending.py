"""Mail leaves exactly one way: an OutgoingMail written with the notification that causes
it, sent by its Celery task through the outbox, at least once, with a stable Message-ID."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from approvals.mail_sending import MAIL_SEND_TASK, _claim, _send, mail_send, mails_purge, mails_resume
from approvals.mailing import mail_preferences_save
from approvals.models import Notification, OutgoingMail
from approvals.notifications import notify_transition
from tests.approvals.conftest import World
from tests.mail_support import mail_tasks_run
from workflows.models import AuditEntry, OutboxEvent

pytestmark = pytest.mark.django_db


def _notify(world: World, *, title: str = "Desk") -> Notification:
    """A new request, and its notification task run as a worker would: the approver's."""
    req = world.new_request(title=title)
    entry = AuditEntry.objects.for_instance(req).order_by("-seq").first()
    assert entry is not None
    notify_transition(request_id=req.pk, action=entry.action, audit_seq=entry.seq, event_id=f"e-{req.pk}")
    return Notification.objects.get(request=req, recipient=world.user("approver"))


def test_the_mail_is_written_with_its_notification_and_sent_by_its_task(world: World) -> None:
    # given a new request's notification task run (nothing sent by it yet)
    mail.outbox.clear()
    note = _notify(world)
    queued = OutgoingMail.objects.get(notification=note)
    assert (queued.status, queued.address, mail.outbox) == ("pending", world.user("approver").email, [])
    assert OutboxEvent.objects.filter(destination=MAIL_SEND_TASK, payload__kwargs__mail_id=queued.pk).exists()
    # when the worker runs the send task
    assert mail_tasks_run() == ["sent"]
    # then the mail left once, with the Message-ID of (notification, recipient)
    (message,) = mail.outbox
    assert message.to == [world.user("approver").email]
    assert message.extra_headers["Message-ID"] == f"<n{note.pk}.u{note.recipient_id}@127.0.0.1>"
    queued.refresh_from_db()
    assert (queued.status, queued.sent_at is not None, queued.lease_until) == ("sent", True, None)
    # and running the task again (the broker delivered it twice) sends nothing
    assert mail_send(mail_id=queued.pk).result == "skipped"
    assert len(mail.outbox) == 1


def test_a_notification_rolled_back_leaves_no_mail(world: World) -> None:
    req = world.new_request(title="Lamp")
    entry = AuditEntry.objects.for_instance(req).order_by("-seq").first()
    assert entry is not None

    def notify_then_fail() -> None:
        with transaction.atomic():
            notify_transition(request_id=req.pk, action=entry.action, audit_seq=entry.seq, event_id="e-x")
            raise RuntimeError("the worker's transaction failed")

    with pytest.raises(RuntimeError):
        notify_then_fail()
    assert not Notification.objects.filter(request=req).exists()
    assert not OutgoingMail.objects.exists()


def test_a_repeated_notification_task_writes_no_second_mail(world: World) -> None:
    note = _notify(world)
    entry = AuditEntry.objects.for_instance(note.request).order_by("-seq").first()
    assert entry is not None
    again = notify_transition(
        request_id=note.request_id, action=entry.action, audit_seq=entry.seq, event_id=note.event_id
    )
    assert again == 0
    assert OutgoingMail.objects.count() == 1


def test_a_digest_reader_gets_no_single_mail(world: World) -> None:
    mail_preferences_save(user=world.user("approver"), time_zone="", choices={"handoff": "digest"})
    note = _notify(world)
    assert not OutgoingMail.objects.exists()
    note.refresh_from_db()
    assert note.digest_pending is True


def test_a_crash_between_send_and_mark_resends_with_the_same_message_id(world: World) -> None:
    # given a mail whose attempt handed it to the server, then died before marking it sent
    mail.outbox.clear()
    queued = OutgoingMail.objects.get(notification=_notify(world))
    claim = _claim(queued.pk)
    assert claim is not None
    assert _send(claim[0]) == ""
    # when its task comes back while the dead attempt's lease still runs
    assert mail_send(mail_id=queued.pk).result == "skipped"
    # then it sends nothing, but queues itself for the end of that lease
    lease_end = OutgoingMail.objects.get(pk=queued.pk).lease_until
    assert lease_end is not None
    retry = OutboxEvent.objects.filter(
        destination=MAIL_SEND_TASK, available_at=lease_end + timedelta(seconds=1)
    )
    assert retry.count() == 1
    # when the lease has run out and the task runs again
    OutgoingMail.objects.filter(pk=queued.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert mail_send(mail_id=queued.pk).result == "sent"
    # then the receiver has it twice under one Message-ID, and it is sent (once, for us)
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [queued.message_id] * 2
    assert OutgoingMail.objects.get(pk=queued.pk).status == "sent"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_smtp_server_that_refuses_is_retried_on_schedule_then_dead(world: World, settings) -> None:
    # given an SMTP server nobody runs, and two retries
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    settings.MAIL_RETRY_SCHEDULE = [30, 120]
    queued = OutgoingMail.objects.get(notification=_notify(world))
    # when the task runs, and again at each retry
    first = mail_send(mail_id=queued.pk)
    assert first.result == "retry"
    assert first.next_attempt_at is not None
    due = OutboxEvent.objects.filter(destination=MAIL_SEND_TASK, available_at=first.next_attempt_at)
    assert due.count() == 1  # the relay sends it when due
    assert mail_send(mail_id=queued.pk).result == "skipped"  # not due yet
    outcomes = []
    for _ in range(2):
        OutgoingMail.objects.filter(pk=queued.pk).update(next_attempt_at=timezone.now())
        outcomes.append(mail_send(mail_id=queued.pk).result)
    # then it is dead after one attempt more than the schedule, the reason kept
    assert outcomes == ["retry", "dead"]
    queued.refresh_from_db()
    assert (queued.status, queued.failures) == ("dead", 3)
    assert "Connection refused" in queued.last_error or "Errno" in queued.last_error


def test_a_mail_whose_task_was_lost_is_queued_again_and_old_sent_ones_purged(world: World) -> None:
    queued = OutgoingMail.objects.get(notification=_notify(world))
    OutboxEvent.objects.filter(destination=MAIL_SEND_TASK).delete()  # the broker lost it
    assert mails_resume(overdue=timedelta(minutes=10)) == 0  # not overdue yet
    OutgoingMail.objects.filter(pk=queued.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert mails_resume(overdue=timedelta(minutes=10)) == 1
    assert mail_tasks_run() == ["sent"]
    OutgoingMail.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert mails_purge(older_than=timedelta(days=30)) == 1


def test_the_admin_lists_mails_read_only(world: World) -> None:
    queued = OutgoingMail.objects.get(notification=_notify(world))
    client = world.client("admin")
    page = client.get("/admin/approvals/outgoingmail/")
    assert page.status_code == 200
    assert queued.address in page.content.decode()
    assert client.get("/admin/approvals/outgoingmail/add/").status_code == 403
