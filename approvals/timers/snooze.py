"""Waking snoozed items: at their follow-up time they come back to their holder's active
list, with a notice in the bell (and a mail) and a live update of the inbox."""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest, Notification
from approvals.timers.notices import notices_send
from approvals.timers.report import ScanReport
from workflows.models import Handoff, Recipient
from workflows.outbox import channel_event, outbox_write

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


def snoozes_wake(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> ScanReport:
    """Wake every open handoff whose follow-up time has come (batches, SKIP LOCKED): its
    snooze ends and its holder is told, once (the notice is keyed by the snooze)."""
    moment = now or timezone.now()
    report = ScanReport()
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    while True:
        with transaction.atomic():
            batch = list(
                Handoff.objects.select_for_update(skip_locked=True)
                .filter(content_type=content_type, closed_at__isnull=True, snoozed_until__lte=moment)
                .order_by("snoozed_until", "id")[:batch_size]
            )
            if not batch:
                break
            report.batches += 1
            requests_by_id = ApprovalRequest.objects.select_related("request_type").in_bulk(
                [int(h.object_id) for h in batch]
            )
            Handoff.objects.filter(pk__in=[h.pk for h in batch]).update(snoozed_until=None)
            events = []
            for handoff in batch:
                request = requests_by_id.get(int(handoff.object_id))
                if request is None or handoff.assignee_id is None or handoff.snoozed_until is None:
                    continue
                notices_send(
                    request=request,
                    people=[handoff.assignee_id],
                    kind=Notification.Kind.FOLLOW_UP,
                    key=f"snooze:{handoff.pk}:{handoff.snoozed_until.isoformat()}",
                    text="back from snooze: it waits for you again",
                    body="You put this request aside until now. It is back in your inbox.",
                )
                events.append(
                    channel_event(
                        group=Recipient(user_id=handoff.assignee_id).channel_group,
                        topic="handoff.changed",
                        payload={
                            "ref": request.workflow_ref(),
                            "action": "wake",
                            "handoff": handoff.pk,
                            "scope": request.request_type.slug,
                            "owner": str(request.requester_id),
                        },
                    )
                )
                report.fired["woken"] += 1
            outbox_write(events)
        if len(batch) < batch_size:
            break
    if report.total:
        logger.info("snoozes woken: %s", report.total)
    return report
