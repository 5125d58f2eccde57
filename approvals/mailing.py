"""Mail for notifications, as each person wants it: each one at once, gathered in a daily
digest sent in their local morning, or none. The bell (Notification rows) keeps every one
whatever the mail preference.

`mail_dispatch` runs where notifications are recorded (approvals.notifications, the
timers' notices), in their transaction: it writes each mail to send at once as an
`OutgoingMail` with its task's outbox event (approvals.mail_sending sends it, at least
once, with a stable Message-ID). `digests_send` is beat's: every run writes the digests of
the people whose local digest hour it is, each notification in one digest once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from approvals.mail_sending import digest_message_id, mails_queue, notification_message_id
from approvals.models import MailPreference, Notification, OutgoingMail
from workflows import errors

logger = logging.getLogger(__name__)

Delivery = MailPreference.Delivery
# The kinds a person chooses mail for, in the order the preferences page lists them.
MAIL_KINDS = tuple(Notification.Kind)


def deliveries(user_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """(user, kind) -> delivery, for those who set one (one query)."""
    return {(p.user_id, p.kind): p.delivery for p in MailPreference.objects.filter(user_id__in=set(user_ids))}


def mail_dispatch(notifications: list[Notification], *, now: datetime | None = None) -> int:
    """Mail each of these (saved) notifications as its recipient prefers: at once, into
    the daily digest, or not at all. People without an address get none.

    Precondition: inside the transaction that records the notifications, so a mail is
    decided exactly when its notification commits. A mail at once is written as an
    `OutgoingMail` whose task the outbox queues after commit. Returns how many go at once.
    """
    if not notifications:
        return 0
    moment = now or timezone.now()
    addresses = dict(
        User.objects.filter(pk__in={n.recipient_id for n in notifications}, is_active=True)
        .exclude(email="")
        .values_list("pk", "email")
    )
    chosen = deliveries(addresses)
    now_ids: list[int] = []
    later_ids: list[int] = []
    outgoing: list[OutgoingMail] = []
    for note in notifications:
        address = addresses.get(note.recipient_id)
        if address is None:
            continue
        delivery = chosen.get((note.recipient_id, note.kind), Delivery.IMMEDIATE)
        if delivery == Delivery.IMMEDIATE:
            now_ids.append(note.pk)
            outgoing.append(
                OutgoingMail(
                    message_id=notification_message_id(note),
                    recipient_id=note.recipient_id,
                    address=address,
                    subject=note.subject,
                    body=note.body,
                    notification=note,
                )
            )
        elif delivery == Delivery.DIGEST:
            later_ids.append(note.pk)
    Notification.objects.filter(pk__in=now_ids).update(mailed_at=moment)
    Notification.objects.filter(pk__in=later_ids).update(digest_pending=True)
    mails_queue(outgoing)
    return len(outgoing)


def _digest_cutoff(person: User, *, now: datetime) -> datetime | None:
    """Today's digest moment in the person's zone, if their digest hour is now; else None."""
    local = now.astimezone(person.zone)
    if local.hour != settings.BATON_DIGEST_HOUR:
        return None
    return datetime.combine(local.date(), time(settings.BATON_DIGEST_HOUR), tzinfo=person.zone)


def digests_send(*, now: datetime | None = None) -> int:
    """Send the daily digest of everyone whose local digest hour (BATON_DIGEST_HOUR) it
    is: one mail listing their pending notifications made before this morning's digest
    moment (later ones wait for tomorrow's). Each notification goes out once, whatever
    runs twice (they are taken FOR UPDATE SKIP LOCKED and marked in one transaction, with
    the digest's mail to send). Returns how many digests went out."""
    moment = now or timezone.now()
    waiting = (
        Notification.objects.filter(digest_pending=True).values_list("recipient_id", flat=True).distinct()
    )
    sent = 0
    for person in User.objects.filter(pk__in=waiting, is_active=True).exclude(email="").order_by("pk"):
        cutoff = _digest_cutoff(person, now=moment)
        if cutoff is None:
            continue
        with transaction.atomic():
            notes = list(
                Notification.objects.select_for_update(skip_locked=True)
                .filter(recipient=person, digest_pending=True, created_at__lt=cutoff)
                .select_related("request")
                .order_by("id")
            )
            if not notes:
                continue
            Notification.objects.filter(pk__in=[n.pk for n in notes]).update(
                digest_pending=False, mailed_at=moment
            )
            subject, body = _digest_text(person, notes)
            mails_queue(
                [
                    OutgoingMail(
                        message_id=digest_message_id(recipient_id=person.pk, notes=notes),
                        recipient=person,
                        address=person.email,
                        subject=subject,
                        body=body,
                    )
                ]
            )
            sent += 1
    if sent:
        logger.info("daily digests sent: %s", sent)
    return sent


def _digest_text(person: User, notes: list[Notification]) -> tuple[str, str]:
    base = settings.BATON_BASE_URL.rstrip("/")
    lines = [f"Good morning {person.display_name}, here is what happened since your last digest:", ""]
    for note in notes:
        when = note.created_at.astimezone(person.zone).strftime("%a %d %b %H:%M")
        lines.append(f"- {when}  {note.subject}")
        lines.append(f"  {base}/requests/{note.request_id}/")
    lines += ["", f"Change what you get by mail: {base}/settings/mail/"]
    return f"Baton daily digest: {len(notes)} update{'s' if len(notes) != 1 else ''}", "\n".join(lines) + "\n"


def mail_preferences_save(*, user: User, time_zone: str, choices: Mapping[str, str]) -> None:
    """Keep a person's time zone and their delivery per kind (`choices`: kind -> delivery).

    Raises InvalidInput naming each bad field ('time_zone', 'kind_<kind>'); saves nothing then.
    """
    problems: dict[str, list[str]] = {}
    zone = time_zone.strip()
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems["time_zone"] = [f"'{zone}' is not a known time zone (e.g. Europe/Berlin)."]
    for kind, delivery in choices.items():
        if kind not in Notification.Kind.values:
            problems[f"kind_{kind}"] = ["Unknown kind of notification."]
        elif delivery not in Delivery.values:
            problems[f"kind_{kind}"] = [f"Choose one of: {', '.join(Delivery.values)}."]
    if problems:
        raise errors.InvalidInput("The mail settings are not valid.", field_errors=problems)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(time_zone=zone)
        for kind, delivery in choices.items():
            MailPreference.objects.update_or_create(user=user, kind=kind, defaults={"delivery": delivery})
    user.time_zone = zone
