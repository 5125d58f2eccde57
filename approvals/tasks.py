"""Celery tasks of the approvals product. Thin: each calls one service function."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from approvals.mailing import digests_send
from approvals.notifications import notify_transition
from approvals.services import idempotent_requests_purge
from approvals.timers import handoff_timer_fire, timers_scan


@shared_task(name="approvals.notify_transition", bind=True, max_retries=5, default_retry_delay=30)
def notify_transition_task(self: Any, *, request_id: int, action: str, audit_seq: int) -> int:
    # The task id is the outbox event id (see workflows.outbox), which de-duplicates.
    return notify_transition(
        request_id=request_id, action=action, audit_seq=audit_seq, event_id=str(self.request.id)
    )


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


@shared_task(name="approvals.idempotency_purge")
def idempotency_purge_task() -> int:
    return idempotent_requests_purge()
