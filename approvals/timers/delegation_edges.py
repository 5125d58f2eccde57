"""Delegation windows opening and closing on time.

Whose items a delegate sees is read at the moment of looking (accounts.models
.DelegationQuerySet.active), so items reach the delegate exactly while a delegation is
open and return when it ends. What the clock alone cannot do is tell open pages: this
scan pushes a live inbox update to both people at each edge (start, end), once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Delegation
from approvals.timers.report import ScanReport
from workflows.models import OutboxEvent, Recipient
from workflows.outbox import channel_event, outbox_write

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


def _edge_events(delegation: Delegation, *, edge: str) -> list[OutboxEvent]:
    payload = {
        "action": f"delegation_{edge}",
        "delegation": delegation.pk,
        "delegator": delegation.delegator_id,
        "delegate": delegation.delegate_id,
    }
    return [
        channel_event(
            group=Recipient(user_id=person).channel_group, topic="delegation.changed", payload=payload
        )
        for person in (delegation.delegate_id, delegation.delegator_id)
    ]


def delegation_edges_announce(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> ScanReport:
    """Push a live update to both people of every delegation that started, or ended (its
    end passed, or it was revoked), by `now` and was not announced yet (batches, SKIP
    LOCKED; each edge once). One that started and ended between two scans is announced
    as ended only; one revoked before it started, not at all."""
    moment = now or timezone.now()
    report = ScanReport()
    due = (
        Q(start_announced_at__isnull=True, starts_at__lte=moment)
        | Q(end_announced_at__isnull=True, ends_at__lte=moment)
        | Q(end_announced_at__isnull=True, revoked_at__lte=moment)
    )
    while True:
        with transaction.atomic():
            batch = list(
                Delegation.objects.select_for_update(skip_locked=True).filter(due).order_by("pk")[:batch_size]
            )
            if not batch:
                break
            report.batches += 1
            events: list[OutboxEvent] = []
            started, ended = [], []
            for delegation in batch:
                ended_at = delegation.ended_at(moment)
                if ended_at is not None:
                    if ended_at > delegation.starts_at:
                        events += _edge_events(delegation, edge="ended")
                        report.fired["delegation_ended"] += 1
                    ended.append(delegation.pk)
                    started.append(delegation.pk)
                else:
                    events += _edge_events(delegation, edge="started")
                    report.fired["delegation_started"] += 1
                    started.append(delegation.pk)
            Delegation.objects.filter(pk__in=started, start_announced_at__isnull=True).update(
                start_announced_at=moment
            )
            Delegation.objects.filter(pk__in=ended).update(end_announced_at=moment)
            outbox_write(events)
        if len(batch) < batch_size:
            break
    if report.total:
        logger.info("delegation edges announced: %s", dict(report.fired))
    return report
