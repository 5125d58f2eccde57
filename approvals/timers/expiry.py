"""The request expiry scan: open requests whose `expires_at` has passed end as `expired`
or escalate, as their `on_expiry` says, once, as the system actor.

Like the handoff scan, each batch is one transaction that takes its requests with
SELECT ... FOR UPDATE SKIP LOCKED: a second scan at the same time takes other rows, and a
request being decided right now is left for the next scan (its decision then stands).
What happens to one request is `approvals.expiry.request_expire`, which re-checks under
the lock, so a scan run twice never expires or escalates twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.expiry import EXPIRABLE, request_expire
from approvals.models import ApprovalRequest, Notification, OnExpiry
from approvals.timers.notices import notices_send
from approvals.timers.report import ScanReport

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


def _due_batch(*, now: datetime, size: int, passed: set[int]) -> list[int]:
    # An escalated request stays open and keeps its expires_at: it is due no more.
    query = (
        ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(expires_at__isnull=False, expires_at__lte=now, state__in=EXPIRABLE)
        .filter(Q(on_expiry=OnExpiry.EXPIRE) | Q(expiry_escalated_at__isnull=True))
        .order_by("expires_at", "id")
    )
    if passed:
        query = query.exclude(pk__in=passed)
    return list(query.values_list("pk", flat=True)[:size])


def requests_expire(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> ScanReport:
    """Expire or escalate every open request due at `now` (default: the present), batch
    by batch, until none is left that this scan can take.

    Side effects per request: the `expire` transition by the system (audited; its open
    handoffs close; the requester hears of it through the usual notifications), or its
    reassignment to the escalation target plus a notice to the requester.
    """
    moment = now or timezone.now()
    report = ScanReport()
    passed: set[int] = set()
    while True:
        with transaction.atomic():
            batch = _due_batch(now=moment, size=batch_size, passed=passed)
            if not batch:
                break
            report.batches += 1
            passed.update(batch)
            for request_id in batch:
                report.fired[_expire_one(request_id=request_id, now=moment)] += 1
        if len(batch) < batch_size:
            break
    if report.total:
        logger.info("expiry scan: %s in %s batch(es)", dict(report.fired), report.batches)
    return report


def _expire_one(*, request_id: int, now: datetime) -> str:
    # A savepoint each: one request's failure must not undo the batch's others.
    with transaction.atomic():
        result = request_expire(request_id=request_id, now=now)
        if result is None:
            return "decided"
        if result.on_expiry != OnExpiry.ESCALATE:
            return "expired"
        target = result.expiry_escalate_user or result.expiry_escalate_group
        notices_send(
            request=result,
            people=[result.requester_id],
            kind=Notification.Kind.ESCALATION,
            key=f"expiry:{result.pk}:escalated",
            text="passed its expiry: escalated",
            body=f"Nobody decided it before its expiry, so it was handed to {target}. It still waits.",
        )
        return "escalated"
