"""What bench/soak counts once the load is over: in the database (every accepted action
once, audit chains, outbox, timers), and at the local receivers (every mail and webhook
the database says went out arrived, once by its id)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.receivers import SmtpReceiver, WebhookCounter


def settle(seconds: float) -> None:
    """Wait (up to `seconds`) until the outbox is delivered and no mail or webhook
    delivery is pending any more."""
    from approvals.models import OutgoingMail
    from workflows.models import OutboxEvent, WebhookDelivery

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = (
            OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).exists()
            or _notify_tasks_undone().exists()
            or OutgoingMail.objects.filter(status=OutgoingMail.Status.PENDING).exists()
            or WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists()
        )
        if not busy:
            return
        time.sleep(1)


def _notify_tasks_undone() -> Any:
    """Notification task events handed to the broker whose task never reported its end."""
    from approvals.lifecycle.base import NOTIFY_TASK
    from workflows.models import OutboxEvent

    return OutboxEvent.objects.filter(destination=NOTIFY_TASK, done_at__isnull=True)


def database_checks(tally: Counter[str]) -> dict[str, Any]:
    from django.db.models import Count

    from approvals.models import ApprovalRequest, Notification
    from workflows.audit import audit_verify
    from workflows.models import AuditEntry, Handoff, OutboxEvent

    timeouts = AuditEntry.objects.filter(action="time_out").values("object_id").annotate(n=Count("id"))
    escalated = Handoff.objects.filter(escalated_at__isnull=False).count()
    escalation_notices = Notification.objects.filter(kind=Notification.Kind.ESCALATION)
    return {
        "requests": ApprovalRequest.objects.count(),
        "submitted (accepted)": tally["submitted"],
        "approvals recorded": AuditEntry.objects.filter(action="approve").count(),
        "approvals accepted": tally["approved"],
        "reassignments recorded": AuditEntry.objects.filter(action="reassign", actor__isnull=False).count(),
        "reassignments accepted": tally["reassigned"],
        "timed out (automatic rejections)": timeouts.count(),
        "requests timed out twice": sum(1 for t in timeouts if t["n"] > 1),
        "handoffs escalated": escalated,
        "escalation notices": escalation_notices.count(),
        "escalation notices twice for a handoff": escalation_notices.values("event_id", "recipient")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "notifications": Notification.objects.count(),
        "outbox events not delivered": OutboxEvent.objects.exclude(
            status=OutboxEvent.Status.DELIVERED
        ).count(),
        "notification tasks never done": _notify_tasks_undone().count(),
        "audit chains verify": audit_verify().ok,
    }


def _arrivals(sent: set[str], copies: Counter[str], noun: str, key: str) -> dict[str, int]:
    return {
        f"{noun} sent (database)": len(sent),
        f"{noun} arrived (distinct {key})": len(copies),
        f"{noun} sent but missing at the receiver": len(sent - set(copies)),
        f"{noun} arrived but not sent (database)": len(set(copies) - sent),
        f"{noun} copies sent again (same {key}, deduped)": sum(copies.values()) - len(copies),
    }


def receiver_checks(smtp: SmtpReceiver, hooks: WebhookCounter) -> dict[str, int]:
    """Every mail the database says was sent arrived, once by Message-ID; every webhook
    delivery it says succeeded arrived, once by webhook-id; none missing, none unknown."""
    from approvals.models import OutgoingMail
    from workflows.models import WebhookDelivery

    mails = OutgoingMail.objects.filter(status=OutgoingMail.Status.SENT)
    delivered = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED)
    return {
        **_arrivals(set(mails.values_list("message_id", flat=True)), smtp.copies(), "mails", "Message-ID"),
        "mails not sent (pending or dead)": OutgoingMail.objects.exclude(
            status=OutgoingMail.Status.SENT
        ).count(),
        **_arrivals({d.webhook_id for d in delivered.only("id")}, hooks.copies(), "webhooks", "webhook-id"),
        "webhooks not delivered (pending or dead)": WebhookDelivery.objects.exclude(
            status=WebhookDelivery.Status.DELIVERED
        ).count(),
        "webhooks refused by the receiver (bad signature)": hooks.refused,
    }


def failures(result: dict[str, Any], tally: Counter[str]) -> list[str]:
    """The names of the checks that do not hold."""
    must_be_zero = [
        "requests timed out twice",
        "escalation notices twice for a handoff",
        "outbox events not delivered",
        "notification tasks never done",
        "mails sent but missing at the receiver",
        "mails arrived but not sent (database)",
        "mails not sent (pending or dead)",
        "webhooks sent but missing at the receiver",
        "webhooks arrived but not sent (database)",
        "webhooks not delivered (pending or dead)",
        "webhooks refused by the receiver (bad signature)",
    ]
    failed = [name for name in must_be_zero if result[name] != 0]
    for recorded, accepted in (
        ("requests", "submitted"),
        ("approvals recorded", "approved"),
        ("reassignments recorded", "reassigned"),
    ):
        if result[recorded] != tally[accepted]:
            failed.append(recorded)
    if not result["audit chains verify"]:
        failed.append("audit chains verify")
    if result["mails sent (database)"] == 0:
        failed.append("no mail was sent at all")
    if result["webhooks sent (database)"] == 0:
        failed.append("no webhook was delivered at all")
    return failed
