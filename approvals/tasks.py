"""Celery tasks of the approvals product. Thin: each calls one service function."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings

from approvals.lifecycle.base import NOTIFY_TASK
from approvals.mail_sending import MAIL_SEND_TASK, mail_send, mails_purge, mails_resume
from approvals.mailing import digests_send
from approvals.notifications import notifications_resume, notify_transition
from approvals.services import idempotent_requests_purge
from approvals.timers import handoff_timer_fire, timers_scan


@shared_task(name=NOTIFY_TASK, bind=True, max_retries=5, default_retry_delay=30)
def notify_transition_task(self: Any, *, request_id: int, action: str, audit_seq: int) -> int:
    # The task id is the outbox event id (see workflows.outbox), which de-duplicates.
    return notify_transition(
        request_id=request_id, action=action, audit_seq=audit_seq, event_id=str(self.request.id)
    )


@shared_task(name="approvals.notifications_resume", ignore_result=True)
def notifications_resume_task() -> int:
    """Hand again to the relay notification tasks lost with a broker's queue (beat)."""
    return notifications_resume(overdue=timedelta(seconds=settings.NOTIFY_RESUME_AFTER))


# The timers live in the database: a scan lost with its worker is simply run again by
# beat, and what it did is recorded with the timers it advanced (never done twice).
@shared_task(name="approvals.timers_scan", acks_late=True, ignore_result=True)
def timers_scan_task() -> dict[str, int]:
    return timers_scan()


@shared_task(name="approvals.handoff_timer_fire", acks_late=True, max_retries=3, default_retry_delay=60)
def handoff_timer_fire_task(*, handoff_id: int) -> str:
    return handoff_timer_fire(handoff_id=handoff_id)


@shared_task(name="approvals.digests_send", acks_late=True, ignore_result=True)
def digests_send_task() -> int:
    return digests_send()


# Acknowledged only once done: a worker killed mid-send leaves the mail to another run,
# which sends it again with the same Message-ID unless it was marked sent.
@shared_task(name=MAIL_SEND_TASK, acks_late=True)
def mail_send_task(*, mail_id: int) -> str:
    return mail_send(mail_id=mail_id).result


@shared_task(name="approvals.mail_resume", ignore_result=True)
def mail_resume_task() -> int:
    """Queue again mails whose task was lost; delete old sent ones (beat: every few minutes)."""
    mails_purge(older_than=timedelta(days=settings.MAIL_KEEP_DAYS))
    return mails_resume(overdue=timedelta(seconds=settings.MAIL_RESUME_AFTER))


@shared_task(name="approvals.idempotency_purge")
def idempotency_purge_task() -> int:
    return idempotent_requests_purge()
