"""The timers scan: every open handoff whose next timer is due gets its reminder or its
escalation, once.

Timers live in the database (`Handoff.next_timer_at`, `reminders_sent`, `escalated_at`);
nothing waits in a broker for a far-off ETA. Beat runs `timers_scan` often; it takes the
due handoffs in batches, each batch one transaction:

    SELECT the batch's handoffs FOR UPDATE SKIP LOCKED   (another scan takes other rows)
    SELECT their requests FOR UPDATE SKIP LOCKED         (one being decided waits for the next scan)
    per handoff, in a savepoint: advance its timers, then remind or escalate

Locking the handoffs and then only *trying* the requests never deadlocks with a decision,
which locks its request first and then closes the handoffs. The timers advance in the
same transaction as what they do, so two scans at once, or a scan run twice, never
remind or escalate twice. A timer whose item was decided meanwhile does nothing and says
so in the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.timers.delegation_edges import delegation_edges_announce
from approvals.timers.escalation import timer_fire
from approvals.timers.expiry import requests_expire
from approvals.timers.report import ScanReport
from approvals.timers.snooze import snoozes_wake
from workflows.models import Handoff

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


def _due_batch(*, now: datetime, size: int, passed: set[int]) -> list[Handoff]:
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    query = (
        Handoff.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(content_type=content_type, closed_at__isnull=True, next_timer_at__lte=now)
        .order_by("next_timer_at", "id")
    )
    if passed:
        query = query.exclude(pk__in=passed)
    return list(query[:size])


def handoff_timers_scan(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> ScanReport:
    """Fire every handoff timer due at `now` (default: the present), batch by batch, until
    none is left that this scan can take.

    Side effects: per timer, a reminder to the holder, or the stage's escalation (word
    to the manager, a reassignment, or an automatic decision through the transition
    service as the system); notifications, mail and live events after commit.
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
            passed.update(h.pk for h in batch)
            ids = {int(h.object_id) for h in batch}
            requests_by_id = {
                r.pk: r
                for r in ApprovalRequest.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("policy_version", "request_type", "requester")
                .filter(pk__in=ids)
            }
            changed: set[int] = set()
            for handoff in batch:
                request = requests_by_id.get(int(handoff.object_id))
                if request is None:
                    report.skipped += 1
                    continue
                if request.pk in changed:
                    # An earlier timer of this batch moved the request on (an automatic
                    # decision closes every handoff of its stage): this one is stale.
                    report.fired["decided"] += 1
                    continue
                outcome = timer_fire(handoff=handoff, request=request, now=moment)
                report.fired[outcome] += 1
                if outcome in {"escalated:approve", "escalated:reject"}:
                    changed.add(request.pk)
        if len(batch) < batch_size:
            break
    if report.total or report.skipped:
        logger.info(
            "timers scan: %s in %s batch(es), %s skipped", dict(report.fired), report.batches, report.skipped
        )
    return report


# Every scan beat runs, in order, each taking the moment to scan for. Expiry runs after
# the handoff timers so an escalation on expiry is not at once re-escalated by its stage.
TIMER_SCANS: list[Callable[..., ScanReport]] = [
    handoff_timers_scan,
    requests_expire,
    snoozes_wake,
    delegation_edges_announce,
]


def timers_scan(*, now: datetime | None = None) -> dict[str, int]:
    """Run every registered timer scan once (what beat calls); returns the counts fired."""
    moment = now or timezone.now()
    totals: Counter[str] = Counter()
    for scan in TIMER_SCANS:
        totals.update(scan(now=moment).fired)
    return dict(totals)


def handoff_timer_fire(*, handoff_id: int, now: datetime | None = None) -> str:
    """Fire one handoff's due timer (by id: a task's unit of work, safe to repeat).

    Locks the request, then the handoff (the transition service's order). Returns what
    happened: 'reminded', 'escalated:<action>', 'nothing' (no timer due) or 'decided'
    (the item was closed or decided before the timer fired; logged, nothing done).
    """
    moment = now or timezone.now()
    found = Handoff.objects.filter(pk=handoff_id).values_list("object_id", flat=True).first()
    if found is None:
        logger.info("timer of handoff %s: no such handoff, nothing done", handoff_id)
        return "nothing"
    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("policy_version", "request_type", "requester")
            .get(pk=int(found))
        )
        handoff = Handoff.objects.select_for_update().get(pk=handoff_id)
        return timer_fire(handoff=handoff, request=request, now=moment)
