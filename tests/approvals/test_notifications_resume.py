"""Notification tasks lost with the broker's queue (a Redis restarted without persistence)
are handed to the relay again by beat's sweep, and still tell each person once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.lifecycle.base import NOTIFY_TASK
from approvals.models import ApprovalRequest, Notification
from approvals.notifications import notifications_resume, notify_transition
from tests.approvals.conftest import World
from workflows.models import OutboxEvent
from workflows.outbox import task_event

pytestmark = pytest.mark.django_db

AFTER = timedelta(minutes=10)


def _notify_event(req: ApprovalRequest) -> OutboxEvent:
    return OutboxEvent.objects.filter(destination=NOTIFY_TASK, payload__kwargs__request_id=req.pk).get()


def _handed_to_broker(event: OutboxEvent, *, ago: timedelta) -> None:
    """As the after-commit push leaves it: delivered (to the broker) `ago`."""
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now() - ago
    )


def _run_task(event: OutboxEvent) -> int:
    """What a worker does with the event's task (the task id is the event id)."""
    return notify_transition(**event.payload["kwargs"], event_id=str(event.pk))


def test_a_notification_task_lost_by_the_broker_is_handed_on_again_and_tells_once(world: World) -> None:
    # given a submitted request whose notification task reached the broker 15 minutes ago
    # and never ran (the broker's queue was lost)
    req = world.new_request()
    event = _notify_event(req)
    _handed_to_broker(event, ago=timedelta(minutes=15))
    # when beat's sweep runs
    resumed = notifications_resume(overdue=AFTER)
    # then the event is pending again, due now, for the relay to deliver
    event.refresh_from_db()
    assert resumed == 1
    assert event.status == OutboxEvent.Status.PENDING
    assert event.available_at <= timezone.now()
    assert event.delivered_at is None
    # and once its task runs, the approvers are told, and the event is done
    told = _run_task(event)
    event.refresh_from_db()
    assert told > 0
    assert event.done_at is not None
    assert Notification.objects.filter(event_id=str(event.pk)).count() == told
    # and a second delivery of the same task tells nobody twice, nor is it resumed again
    _handed_to_broker(event, ago=timedelta(minutes=15))
    assert _run_task(event) == 0
    assert Notification.objects.filter(event_id=str(event.pk)).count() == told
    assert notifications_resume(overdue=AFTER) == 0


def test_a_notification_task_that_ran_is_left_alone(world: World) -> None:
    # given a notification task that ran to its end, delivered long ago
    req = world.new_request()
    event = _notify_event(req)
    _handed_to_broker(event, ago=timedelta(hours=2))
    _run_task(event)
    # when the sweep runs, then nothing is handed on again
    assert notifications_resume(overdue=AFTER) == 0
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DELIVERED


def test_a_notification_task_delivered_recently_may_still_be_queued(world: World) -> None:
    # given a notification task handed to the broker a minute ago, not run yet
    event = _notify_event(world.new_request())
    _handed_to_broker(event, ago=timedelta(minutes=1))
    # when the sweep runs, then it waits (the task may still be queued or running)
    assert notifications_resume(overdue=AFTER) == 0
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DELIVERED


def test_other_tasks_are_never_handed_on_by_the_sweep(world: World) -> None:
    # given another task's event, delivered long ago, that never reported done
    other = task_event(task="workflows.webhook_fanout", kwargs={"x": 1})
    other.status, other.delivered_at = OutboxEvent.Status.DELIVERED, timezone.now() - timedelta(hours=1)
    other.save()
    # when the notification sweep runs, then that event stays as it is
    assert notifications_resume(overdue=AFTER) == 0
    other.refresh_from_db()
    assert other.status == OutboxEvent.Status.DELIVERED
