"""Deliveries written with the change that caused them.

Called by the transition service inside its transaction: for each event type the step
is (its workflow's `WebhookSource` says which), one `WebhookDelivery` per active
subscription of that type whose owner may see the item, and one for the item's own
callback URL; each with an outbox task event, so the Celery task that sends it goes out
right after commit, or later through the relay when the broker is down.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from workflows import sql
from workflows.audit import json_normalise
from workflows.models import OutboxEvent, WebhookDelivery, WebhookSubscription
from workflows.outbox import task_event
from workflows.webhooks.registry import StepFacts, WebhookSource, webhook_source_of

DELIVER_TASK = "workflows.webhook_deliver"


def deliver_event(delivery_id: Any) -> OutboxEvent:
    """The outbox event that runs the delivery task for one delivery."""
    return task_event(task=DELIVER_TASK, kwargs={"delivery_id": str(delivery_id)})


def _payload(source: WebhookSource, step: StepFacts, event_type: str, now_iso: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        **source.data(step.instance),
        "action": step.action,
        "source": step.source,
        "target": step.target,
        "actor": step.actor.get_username() if step.actor is not None else None,
        "audit_seq": step.audit_seq,
    }
    if step.opened:
        data["handoffs_opened"] = [
            {
                "id": h.pk,
                "stage": h.stage,
                "assignee": h.assignee.get_username() if h.assignee is not None else None,
                "group": h.candidate_group.name if h.candidate_group is not None else None,
                "due_at": h.due_at,
            }
            for h in step.opened
        ]
    return {"type": event_type, "timestamp": now_iso, "data": json_normalise(data)}


def webhook_deliveries_for_step(step: StepFacts) -> list[OutboxEvent]:
    """Insert the deliveries `step` causes and return their outbox task events.

    Precondition: inside the transaction of the transition (the caller writes the events
    with the rest). Reads the active subscriptions (one query) and, for those matching,
    asks the item's source who may see it. Nothing when the model has no source.
    """
    source = webhook_source_of(type(step.instance))
    if source is None:
        return []
    types = source.event_types(step)
    if not types:
        return []
    now = timezone.now()
    now_iso = now.isoformat()
    ref = step.instance.workflow_ref()
    matching = [
        s
        for s in WebhookSubscription.objects.filter(is_active=True).select_related("owner")
        if set(s.event_types) & set(types)
    ]
    rows: list[WebhookDelivery] = []
    if matching:
        owners = list({s.owner_id: s.owner for s in matching}.values())
        allowed = source.visible_to(step.instance, owners)
        for subscription in matching:
            if subscription.owner_id not in allowed:
                continue
            rows += [
                WebhookDelivery(
                    subscription=subscription,
                    target_url=subscription.target_url,
                    event_type=event_type,
                    instance_ref=ref,
                    payload=_payload(source, step, event_type, now_iso),
                    next_attempt_at=now,
                    created_at=now,
                )
                for event_type in types
                if event_type in subscription.event_types
            ]
    callback = source.callback_url(step.instance)
    if callback:
        rows += [
            WebhookDelivery(
                subscription=None,
                target_url=callback,
                event_type=event_type,
                instance_ref=ref,
                payload=_payload(source, step, event_type, now_iso),
                next_attempt_at=now,
                created_at=now,
            )
            for event_type in types
            if event_type in source.callback_event_types()
        ]
    if not rows:
        return []
    sql.rows_insert(rows)
    return [deliver_event(row.id) for row in rows]
