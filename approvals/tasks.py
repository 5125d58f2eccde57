"""Celery tasks of the approvals product. Thin: each calls one service function."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from approvals.notifications import notify_transition
from approvals.services import idempotent_requests_purge


@shared_task(name="approvals.notify_transition", bind=True, max_retries=5, default_retry_delay=30)
def notify_transition_task(self: Any, *, request_id: int, action: str, audit_seq: int) -> int:
    # The task id is the outbox event id (see workflows.outbox), which de-duplicates.
    return notify_transition(
        request_id=request_id, action=action, audit_seq=audit_seq, event_id=str(self.request.id)
    )


@shared_task(name="approvals.idempotency_purge")
def idempotency_purge_task() -> int:
    return idempotent_requests_purge()
