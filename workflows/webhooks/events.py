"""Deliveries of a step: announced in its transaction, fanned out by a task after commit.

Inside the transition the step only adds one outbox task event (`webhook_fanout_event`)
to the events it writes anyway: no query, and no extra statement, as the outbox inserts
all of a step's events at once. The event is committed with the change or rolled back
with it, so no step is lost; after commit it runs `webhook_fanout` in a Celery worker,
which reads the matching subscriptions, keeps the owners who may see the item, and
writes one `WebhookDelivery` per (subscription, event type) — plus one for the item's
own callback URL — each with its delivery task event, in one transaction. That task is
acknowledged late and may run twice; `WebhookFanout` makes the second run a no-op.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from workflows import sql
from workflows.audit import json_normalise
from workflows.models import (
    Handoff,
    OutboxEvent,
    WebhookDelivery,
    WebhookFanout,
    WebhookSubscription,
    WorkflowModel,
)
from workflows.outbox import outbox_write, task_event
from workflows.webhooks.registry import StepFacts, WebhookSource, webhook_source_of

logger = logging.getLogger(__name__)

DELIVER_TASK = "workflows.webhook_deliver"
FANOUT_TASK = "workflows.webhook_fanout"


def deliver_event(delivery_id: Any) -> OutboxEvent:
    """The outbox event that runs the delivery task for one delivery."""
    return task_event(task=DELIVER_TASK, kwargs={"delivery_id": str(delivery_id)})


def webhook_fanout_event(step: StepFacts) -> list[OutboxEvent]:
    """The outbox task event that will fan `step` out to its subscribers ([] when the
    item's model has no webhook source or the step is no event type).

    Precondition: inside the step's transaction; the caller writes the event with the
    step's others. Reads nothing from the database: everything the task needs about the
    step is in its kwargs (the item's snapshot, the handoffs opened, the actor's name).
    """
    source = webhook_source_of(type(step.instance))
    if source is None:
        return []
    types = source.event_types(step)
    if not types:
        return []
    opened = [
        {
            "id": h.pk,
            "stage": h.stage,
            "assignee_id": h.assignee_id,
            "group_id": h.candidate_group_id,
            "due_at": h.due_at,
        }
        for h in step.opened
    ]
    event = task_event(task=FANOUT_TASK, kwargs={})
    # The event id is also the Celery task id; carrying it in the kwargs as well keeps
    # the task idempotent however it is run (a worker, the relay, a test calling it).
    event.payload["kwargs"] = json_normalise(
        {
            "event_id": str(event.id),
            "model": step.instance._meta.label_lower,
            "instance_id": step.instance.pk,
            "types": types,
            "snapshot": source.snapshot(step.instance),
            "action": step.action,
            "source": step.source,
            "target": step.target,
            "actor": step.actor.get_username() if step.actor is not None else None,
            "audit_seq": step.audit_seq,
            "opened": opened,
            "occurred_at": step.occurred_at or timezone.now(),
        }
    )
    return [event]


def _opened_data(opened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The handoffs a step opened, with the names of their assignee and group."""
    users = dict(
        User.objects.filter(pk__in=[h["assignee_id"] for h in opened if h["assignee_id"]]).values_list(
            "pk", "username"
        )
    )
    group_model = Handoff._meta.get_field("candidate_group").related_model
    assert not isinstance(group_model, str)
    groups = dict(
        group_model._default_manager.filter(
            pk__in=[h["group_id"] for h in opened if h["group_id"]]
        ).values_list("pk", "name")
    )
    return [
        {
            "id": h["id"],
            "stage": h["stage"],
            "assignee": users.get(h["assignee_id"]),
            "group": groups.get(h["group_id"]),
            "due_at": h["due_at"],
        }
        for h in opened
    ]


def _payloads(source: WebhookSource, step: dict[str, Any], types: list[str]) -> dict[str, dict[str, Any]]:
    """The payload of each event type of the step (built once, shared by every endpoint)."""
    data: dict[str, Any] = {
        **source.data(step["snapshot"]),
        "action": step["action"],
        "source": step["source"],
        "target": step["target"],
        "actor": step["actor"],
        "audit_seq": step["audit_seq"],
    }
    if step["opened"]:
        data["handoffs_opened"] = _opened_data(step["opened"])
    data = json_normalise(data)
    return {t: {"type": t, "timestamp": step["occurred_at"], "data": data} for t in types}


def _deliveries(
    source: WebhookSource, instance: WorkflowModel, step: dict[str, Any], types: list[str]
) -> list[WebhookDelivery]:
    """The deliveries of the step: to each matching active subscription whose owner may
    see the item now, and to the item's own callback URL."""
    now = timezone.now()
    ref = instance.workflow_ref()
    matching = [
        s
        for s in WebhookSubscription.objects.filter(is_active=True).select_related("owner")
        if set(s.event_types) & set(types)
    ]
    targets: list[tuple[WebhookSubscription | None, str, str]] = []
    if matching:
        owners = list({s.owner_id: s.owner for s in matching}.values())
        allowed = source.visible_to(instance, owners)
        targets += [
            (s, s.target_url, t)
            for s in matching
            if s.owner_id in allowed
            for t in types
            if t in s.event_types
        ]
    callback = source.callback_url(instance)
    if callback:
        targets += [(None, callback, t) for t in types if t in source.callback_event_types()]
    if not targets:
        return []
    payloads = _payloads(source, step, types)
    return [
        WebhookDelivery(
            subscription=subscription,
            target_url=url,
            event_type=event_type,
            instance_ref=ref,
            payload=payloads[event_type],
            next_attempt_at=now,
            created_at=now,
        )
        for subscription, url, event_type in targets
    ]


def webhook_fanout(*, event_id: str, model: str, instance_id: Any, types: list[str], **step: Any) -> int:
    """Write the deliveries of one step (the fan-out task's work); how many were written.

    Precondition: the step committed (the task runs after commit). Idempotent by
    `event_id` (the step's own fan-out event, kept when resumed): a second run (a task
    acknowledged late and delivered again, a resumed one) writes nothing. Side effects, in one transaction: the
    deliveries, their delivery task events (pushed after commit), the `WebhookFanout`
    marker. An item deleted since is logged and skipped.
    """
    with transaction.atomic():
        try:
            # A savepoint: a concurrent or earlier run already holds the marker.
            with transaction.atomic():
                WebhookFanout.objects.create(event_id=event_id)
        except IntegrityError:
            logger.info("webhook fan-out %s already ran", event_id)
            return 0
        try:
            model_class = apps.get_model(model)
        except LookupError:
            logger.error("webhook fan-out %s: unknown model %s", event_id, model)
            return 0
        source = webhook_source_of(model_class)
        instance = model_class._default_manager.filter(pk=instance_id).first()
        if source is None or not isinstance(instance, WorkflowModel):
            logger.warning(
                "webhook fan-out %s: %s %s is gone or has no webhooks", event_id, model, instance_id
            )
            return 0
        rows = _deliveries(source, instance, step, types)
        if rows:
            sql.rows_insert(rows)
            outbox_write([deliver_event(row.id) for row in rows])
    return len(rows)


# A fan-out pushed to the broker but never run (the broker lost it) is looked for this far
# back: the outbox keeps delivered events longer, and a lost task is found within minutes.
FANOUT_RESUME_WINDOW = timedelta(days=1)


def webhook_fanouts_resume(*, overdue: timedelta) -> int:
    """Queue again the fan-outs handed to the broker more than `overdue` ago that never
    ran (no `WebhookFanout` marker): a broker that lost its messages loses no step.
    Returns how many. Their kwargs carry the first event's id, so a late first run and
    the resumed one still write the deliveries once."""
    now = timezone.now()
    candidates = (
        OutboxEvent.objects.filter(
            status=OutboxEvent.Status.DELIVERED,
            delivered_at__gte=now - FANOUT_RESUME_WINDOW,
            delivered_at__lt=now - overdue,
            destination=FANOUT_TASK,
        )
        .exclude(pk__in=WebhookFanout.objects.values("event_id"))
        .values_list("pk", "payload")[:500]
    )
    # A step's own fan-out event carries its own id; a copy queued by an earlier sweep
    # carries the first one's (the copy is not resumed again: the first one still is).
    lost = [p["kwargs"] for pk, p in candidates if p["kwargs"].get("event_id") == str(pk)]
    queued = {
        str(p["kwargs"].get("event_id"))
        for pk, p in OutboxEvent.objects.filter(
            destination=FANOUT_TASK, status=OutboxEvent.Status.PENDING
        ).values_list("pk", "payload")
        if p["kwargs"].get("event_id") != str(pk)
    }
    events = [
        task_event(task=FANOUT_TASK, kwargs=kwargs) for kwargs in lost if kwargs["event_id"] not in queued
    ]
    for event in events:
        event.created_at = event.available_at = now
    if events:
        with transaction.atomic():
            sql.rows_insert(events)
    return len(events)
