"""Sending mail, the one way Baton does it: an `OutgoingMail` row and the outbox event of
its task are written in the transaction that decides the mail; the Celery task
`approvals.mail_send` sends it and marks it sent.

So a mail is never lost with a worker or a broker: the intent commits with the change
that causes it, the outbox queues its task whatever the broker does meanwhile, and the
task is acknowledged late (a worker killed mid-send leaves it to another). It is sent
at least once: a worker killed after the SMTP server took the mail but before it was
marked sent makes the next attempt send it again, with the same `Message-ID` header,
fixed when the row was written (`<n{notification}.u{recipient}@…>` for a notification's
mail), by which a receiver drops the copy.

An attempt claims the mail with a conditional UPDATE (pending, due, no attempt in
flight), sends outside any transaction, then records the outcome only if its claim still
holds. A failure is retried after MAIL_RETRY_SCHEDULE through an outbox event due then;
after the last one the mail is dead. Beat queues again a pending mail whose task was
lost (MAIL_RESUME_AFTER) and deletes sent and dead ones after MAIL_KEEP_DAYS.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import Notification, OutgoingMail
from workflows import sql
from workflows.models import OutboxEvent
from workflows.outbox import outbox_write, task_event

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

MAIL_SEND_TASK = "approvals.mail_send"
# A task may reach a worker whose clock is slightly behind the one that made the mail due.
CLOCK_SKEW = timedelta(seconds=2)
Status = OutgoingMail.Status


def message_domain() -> str:
    """The right-hand side of Baton's Message-IDs: the host of BATON_BASE_URL."""
    return urlsplit(settings.BATON_BASE_URL).hostname or "baton.invalid"


def notification_message_id(note: Notification) -> str:
    """The Message-ID of `note`'s single mail: one per (notification, recipient), stable."""
    return f"<n{note.pk}.u{note.recipient_id}@{message_domain()}>"


def digest_message_id(*, recipient_id: int, notes: list[Notification]) -> str:
    """The Message-ID of a digest of `notes` (each in one digest only): stable, unique."""
    ids = sorted(n.pk for n in notes)
    return f"<digest.u{recipient_id}.n{ids[0]}-{ids[-1]}.{len(ids)}@{message_domain()}>"


def send_event(mail_id: int) -> OutboxEvent:
    return task_event(task=MAIL_SEND_TASK, kwargs={"mail_id": mail_id})


def mails_queue(mails: Iterable[OutgoingMail]) -> list[OutgoingMail]:
    """Write `mails` and their send tasks' outbox events.

    Precondition: inside the transaction that decides them (they commit with it, or not
    at all). Side effect: their tasks are pushed after commit (else the relay sends them).
    """
    rows = list(mails)
    if not rows:
        return []
    OutgoingMail.objects.bulk_create(rows)
    outbox_write(send_event(m.pk) for m in rows)
    return rows


@dataclass(frozen=True)
class SendOutcome:
    """What one run of the send task did: 'skipped' (sent already, dead, not due, or in
    flight: then a retry is queued for the end of that attempt's lease), 'sent', 'retry'
    (next attempt at `next_attempt_at`) or 'dead'."""

    result: str
    next_attempt_at: datetime | None = None


def _claim(mail_id: int) -> tuple[OutgoingMail, uuid.UUID] | None:
    now = timezone.now()
    token = uuid.uuid4()
    claimed = OutgoingMail.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=mail_id,
        status=Status.PENDING,
        next_attempt_at__lte=now + CLOCK_SKEW,
    ).update(lease_until=now + timedelta(seconds=settings.MAIL_SEND_LEASE), lease_token=token)
    if not claimed:
        return None
    return OutgoingMail.objects.get(pk=mail_id), token


def _event_due(mail_id: int, due: datetime) -> None:
    """An outbox event that runs the send task at `due` (the relay sends it then)."""
    event = send_event(mail_id)
    event.created_at, event.available_at = timezone.now(), due
    sql.rows_insert([event])


def _in_flight(mail_id: int) -> SendOutcome:
    """The mail was not ours to send now. If another attempt holds it (or held it and
    died: a worker killed mid-send), come back when its lease ends, so a lost attempt
    is finished without waiting for the resume sweep."""
    leased = (
        OutgoingMail.objects.filter(pk=mail_id, status=Status.PENDING, lease_until__isnull=False)
        .values_list("lease_until", flat=True)
        .first()
    )
    if leased is not None:
        _event_due(mail_id, leased + timedelta(seconds=1))
    return SendOutcome("skipped")


def _send(mail: OutgoingMail) -> str:
    """Hand `mail` to the configured backend; '' when it took it, else why not."""
    message = EmailMessage(
        subject=mail.subject,
        body=mail.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[mail.address],
        headers={"Message-ID": mail.message_id},
    )
    try:
        message.send()
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors: an attempt's outcome
        return f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    return ""


def mail_send(*, mail_id: int) -> SendOutcome:
    """Make one attempt to send a pending, due mail that no other attempt holds.

    Side effects: the mail handed to the mail backend (outside any transaction); the row
    marked sent, dead, or due again with an outbox event at the retry time.
    """
    claim = _claim(mail_id)
    if claim is None:
        return _in_flight(mail_id)
    mail, token = claim
    error = _send(mail)
    fields: dict[str, object] = {"lease_until": None, "lease_token": None}
    schedule = [float(s) for s in settings.MAIL_RETRY_SCHEDULE]
    retry_at: datetime | None = None
    if not error:
        fields.update(status=Status.SENT, sent_at=timezone.now(), last_error="")
        outcome = SendOutcome("sent")
    elif mail.failures >= len(schedule):
        fields.update(status=Status.DEAD, failures=mail.failures + 1, last_error=error)
        outcome = SendOutcome("dead")
        logger.error("mail %s to %s is dead: %s", mail.message_id, mail.address, error)
    else:
        retry_at = timezone.now() + timedelta(seconds=schedule[mail.failures])
        fields.update(failures=mail.failures + 1, next_attempt_at=retry_at, last_error=error)
        outcome = SendOutcome("retry", retry_at)
        logger.warning(
            "mail %s to %s failed (%s); again at %s", mail.message_id, mail.address, error, retry_at
        )
    with transaction.atomic():
        # Only while the claim is ours: a lease that ran out may have let another attempt in.
        if not OutgoingMail.objects.filter(pk=mail.pk, lease_token=token).update(**fields):
            return SendOutcome("skipped")
        if retry_at is not None:
            _event_due(mail.pk, retry_at)
    return outcome


def mails_resume(*, overdue: timedelta) -> int:
    """Queue again the pending mails overdue by more than `overdue` and not in flight
    (their task was lost, e.g. with a broker's queue). Returns how many."""
    now = timezone.now()
    stuck = list(
        OutgoingMail.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            status=Status.PENDING,
            next_attempt_at__lt=now - overdue,
        ).values_list("pk", flat=True)[:500]
    )
    if stuck:
        events = [send_event(pk) for pk in stuck]
        for event in events:
            event.created_at = event.available_at = now
        with transaction.atomic():
            sql.rows_insert(events)
    return len(stuck)


def mails_purge(*, older_than: timedelta) -> int:
    """Delete sent and dead mails written more than `older_than` ago; pending ones stay."""
    cutoff = timezone.now() - older_than
    deleted, _ = OutgoingMail.objects.filter(
        status__in=[Status.SENT, Status.DEAD], created_at__lt=cutoff
    ).delete()
    return deleted
