"""The same webhook fan-out run by several workers at once on PostgreSQL (a task delivered
twice, acknowledged late): its deliveries are written once. The first run's marker row
holds the others on its primary key until it commits; they then find it and stop."""

from __future__ import annotations

import pytest

from tests.factories import RequestTypeFactory, make_request, make_requester
from tests.integration.conftest import run_concurrently
from workflows.models import OutboxEvent, WebhookDelivery, WebhookEventType, WebhookFanout
from workflows.webhooks.events import DELIVER_TASK, FANOUT_TASK
from workflows.webhooks.services import webhook_subscription_create
from workflows.webhooks.tasks import webhook_fanout_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_four_workers_running_one_fan_out_at_once_write_its_deliveries_once():
    # given a requester subscribed to every event, and their submitted request
    requester = make_requester()
    webhook_subscription_create(
        owner=requester, target_url="https://hooks.example.com/x", event_types=list(WebhookEventType.values)
    )
    request = make_request(requester=requester, request_type=RequestTypeFactory.create())
    kwargs = OutboxEvent.objects.get(
        destination=FANOUT_TASK, payload__kwargs__instance_id=request.pk
    ).payload["kwargs"]

    # when four workers run its fan-out at the same moment
    outcomes = run_concurrently(4, lambda i: webhook_fanout_task(**kwargs))

    # then none failed, one wrote the submission's three deliveries and the others nothing
    assert [o.error for o in outcomes] == [None] * 4
    assert sorted(o.value for o in outcomes) == [0, 0, 0, 3]
    assert WebhookDelivery.objects.count() == 3
    assert OutboxEvent.objects.filter(destination=DELIVER_TASK).count() == 3
    assert WebhookFanout.objects.filter(event_id=kwargs["event_id"]).count() == 1
