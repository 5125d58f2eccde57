"""Webhooks end to end: a real Celery worker on the Redis broker sends a submission to a
real local receiver that verifies each signature with `standardwebhooks`; the receiver
fails twice, the retries come back through the outbox relay with the same webhook-id."""

from __future__ import annotations

import pytest

from approvals.services import request_act
from tests.factories import make_request
from tests.integration.conftest import CELERY_WORKER, Services, subprocess_env, wait_until
from tests.webhook_receiver import WebhookReceiver
from workflows.models import WebhookDelivery, WebhookEventType
from workflows.outbox import outbox_relay_drain
from workflows.webhooks.services import webhook_subscription_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_celery_worker_delivers_webhooks_with_retries_and_loses_nothing(
    services: Services, requester, request_type, approver
):
    # given a real Celery worker whose retries come one second apart
    worker = services.start(
        "celery-worker",
        CELERY_WORKER,
        env=subprocess_env(WEBHOOK_RETRY_SCHEDULE="1,1,1"),
    )
    wait_until(lambda: " ready." in worker.log() or not worker.alive(), timeout=60, what="the worker")
    assert worker.alive(), worker.log()

    with WebhookReceiver(secrets=[], fail_first=2) as receiver:
        # and the approver's subscription to submissions and decisions, to a receiver failing twice
        made = webhook_subscription_create(
            owner=approver,
            target_url=receiver.url,
            event_types=[WebhookEventType.REQUEST_SUBMITTED.value, WebhookEventType.REQUEST_DECIDED.value],
        )
        receiver.secrets.append(made.secret)

        # when a request is submitted and then approved
        request = make_request(requester=requester, request_type=request_type)
        request_act(request_id=request.pk, action="approve", actor=approver)

        # then, with the relay sending the retries when due, both arrive
        def both_delivered() -> bool:
            outbox_relay_drain()
            return len(receiver.accepted()) == 2

        wait_until(both_delivered, timeout=60, what="both deliveries", interval=0.2)

    # and nothing was lost or sent twice: each accepted once, every request verified
    accepted = receiver.accepted()
    assert sorted(r.payload["type"] for r in accepted) == ["request.decided", "request.submitted"]
    assert len({r.webhook_id for r in accepted}) == 2
    assert all(r.verified_by == [0] for r in receiver.received)
    # and the two failures were retries of deliveries that then arrived, with the same webhook-id
    assert len(receiver.received) == 4
    assert {r.webhook_id for r in receiver.received} == {r.webhook_id for r in accepted}
    deliveries = WebhookDelivery.objects.filter(subscription=made.subscription)
    assert set(deliveries.values_list("status", flat=True)) == {WebhookDelivery.Status.DELIVERED}
    assert sum(d.attempts.count() for d in deliveries) == 4
    assert worker.alive(), worker.log()
