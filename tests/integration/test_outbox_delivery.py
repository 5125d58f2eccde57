"""The outbox against real Redis: relays side by side, and Redis going away and coming back."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.factories import make_request
from tests.integration.conftest import (
    celery_queue_task_ids,
    redis_layer_config,
    run_concurrently,
)
from workflows import outbox
from workflows.models import OutboxEvent
from workflows.outbox import RelayResult, outbox_relay_drain

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REQUESTS = 50
RELAYS = 4


def _push_nothing(*, events: list[OutboxEvent]) -> RelayResult:
    return RelayResult()


def _make_due(events) -> None:
    # A push lease or a failed push's backoff puts an event a while ahead; skip the wait.
    OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(available_at=timezone.now())


def test_four_relays_deliver_each_pending_event_exactly_once(
    monkeypatch, settings, redis_test_db, channel_receiver, requester, request_type, approver
):
    # given a few hundred events written by real transitions whose after-commit push never
    # ran (as if each process died right after its commit), and whose push lease is over
    settings.CHANNEL_LAYERS = redis_layer_config(settings.REDIS_URL, prefix=f"relay-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(outbox, "outbox_push", _push_nothing)
    for i in range(REQUESTS):
        request = make_request(requester=requester, request_type=request_type, title=f"Desk {i}")
        if i % 2:
            request_act(request_id=request.pk, action="approve", actor=approver)
    _make_due(OutboxEvent.objects.all())
    pending = list(OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING))
    channel_events = [e for e in pending if e.kind == OutboxEvent.Kind.CHANNEL]
    task_events = [e for e in pending if e.kind == OutboxEvent.Kind.TASK]
    assert len(pending) == OutboxEvent.objects.count() >= 300
    # and a receiver on the Redis layer that is in every group those events go to
    channel_receiver.join(sorted({e.destination for e in channel_events}))

    # when four relays drain the outbox at the same moment, in small batches
    outcomes = run_concurrently(RELAYS, lambda i: outbox_relay_drain(limit=20, max_batches=100))

    # then the relays shared the work and together delivered each event once
    assert [o.error for o in outcomes] == [None] * RELAYS
    delivered = [o.value.delivered for o in outcomes]
    assert sum(delivered) == len(pending), delivered
    assert sum(1 for d in delivered if d) >= 2, f"the relays did not share the work: {delivered}"
    assert all(o.value.retried == o.value.dead == 0 for o in outcomes)
    rows = OutboxEvent.objects.all()
    assert Counter(rows.values_list("status", "attempts")) == {
        (OutboxEvent.Status.DELIVERED, 1): len(pending)
    }
    # and the receiver got every channel event exactly once
    messages = channel_receiver.receive(expected=len(channel_events), timeout=20)
    received = Counter(m["event"]["id"] for m in messages)
    assert all(m["type"] == outbox.RELAY_MESSAGE_TYPE for m in messages)
    assert received == Counter(str(e.id) for e in channel_events)
    # and the broker queue holds every task event exactly once (the event id is the task id)
    assert Counter(celery_queue_task_ids(redis_test_db)) == Counter(str(e.id) for e in task_events)


def test_events_wait_while_redis_is_down_and_go_out_when_it_is_back(
    settings, redis_server, celery_broker, channel_receiver, requester, request_type, approver
):
    # given channel layer and Celery broker on a Redis of our own, and a submitted request
    settings.CHANNEL_LAYERS = redis_layer_config(redis_server.url, prefix="outage")
    celery_broker(redis_server.url)
    request = make_request(requester=requester, request_type=request_type)
    assert not OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).exists()

    # when Redis stops and an approver approves the request
    redis_server.stop()
    started = time.monotonic()
    request_act(request_id=request.pk, action="approve", actor=approver, comment="go ahead")
    took = time.monotonic() - started

    # then the approval committed anyway, within the broker's connect timeout
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"
    assert took < 10, f"the approval waited {took:.1f}s for the dead Redis"
    # and its events wait in the outbox, each saying why
    waiting = list(OutboxEvent.objects.filter(payload__action="approve")) + list(
        OutboxEvent.objects.filter(payload__kwargs__action="approve")
    )
    assert len(waiting) == 5  # three channel events, the notification and the webhook fan-out
    for event in waiting:
        assert event.status == OutboxEvent.Status.PENDING
        assert event.attempts == 1
        assert "connect" in event.last_error.lower(), event.last_error
    channel_events = [e for e in waiting if e.kind == OutboxEvent.Kind.CHANNEL]
    task_events = [e for e in waiting if e.kind == OutboxEvent.Kind.TASK]
    assert len(task_events) == 2

    # when Redis is back on the same port and the relay runs
    redis_server.start()
    channel_receiver.join([e.destination for e in channel_events])
    _make_due(waiting)
    result = outbox_relay_drain()

    # then every waiting event went out
    assert result == RelayResult(delivered=5)
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {OutboxEvent.Status.DELIVERED}
    # and the channel events reached a receiver on the Redis layer, once each
    messages = channel_receiver.receive(expected=len(channel_events), timeout=10)
    assert sorted(m["event"]["id"] for m in messages) == sorted(str(e.id) for e in channel_events)
    assert {m["event"]["action"] for m in messages} == {"approve"}
    # and the tasks are in the broker's queue on that Redis
    with redis_server.client() as client:
        assert sorted(celery_queue_task_ids(client)) == sorted(str(e.id) for e in task_events)
