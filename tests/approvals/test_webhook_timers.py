"""The webhook events of what time does to a request: an SLA escalation by the timers
(`request.escalated`) and an expiry (`request.expired`), each received by a real local
receiver that verifies its signature with the `standardwebhooks` package."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from approvals.expiry import request_expire
from approvals.models import ApprovalRequest, OnExpiry, State
from approvals.timers import handoff_timers_scan
from tests.approvals.test_timers_scan import Desk
from tests.factories import GroupFactory, make_approver
from tests.webhook_receiver import WebhookReceiver, webhook_tasks_run
from workflows.models import WebhookEventType
from workflows.webhooks.services import callback_secret, webhook_subscription_create

pytestmark = pytest.mark.django_db

ESCALATED = WebhookEventType.REQUEST_ESCALATED.value
EXPIRED = WebhookEventType.REQUEST_EXPIRED.value
DECIDED = WebhookEventType.REQUEST_DECIDED.value


@pytest.fixture(autouse=True)
def _quick_retries(settings) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_TIMEOUT = 5


def _subscribe(owner: User, receiver: WebhookReceiver, types: list[str]) -> None:
    made = webhook_subscription_create(owner=owner, target_url=receiver.url, event_types=types)
    receiver.secrets.append(made.secret)


def _types(receiver: WebhookReceiver) -> list[str]:
    return sorted(r.payload["type"] for r in receiver.accepted())


def test_an_overdue_stage_handed_on_by_the_timers_is_heard_as_escalated():
    # given a stage that escalates to the leads group, and its requester subscribed to
    # escalations
    leads = GroupFactory.create(name="leads")
    make_approver(leads)
    desk = Desk(escalate_to={"group": leads.name})
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(desk.requester, receiver, [ESCALATED])
        assert webhook_tasks_run() == []

        # when the timers scan runs after the due time
        assert handoff_timers_scan(now=desk.at(10.5)).fired["escalated:reassign"] == 1
        assert webhook_tasks_run() == ["delivered"]

        # then the receiver got one verified `request.escalated`, done by the system
        [received] = receiver.accepted()
        assert received.verified_by == [0]
        assert received.payload["type"] == ESCALATED
        data = received.payload["data"]
        assert (data["ref"], data["action"], data["actor"], data["state"]) == (
            desk.request.reference,
            "reassign",
            None,
            State.IN_REVIEW,
        )
        assert [h["group"] for h in data["handoffs_opened"]] == ["leads"]


def test_an_overdue_stage_rejected_by_its_policy_is_heard_as_escalated_and_decided():
    # given a stage whose policy rejects when overdue, its requester subscribed to both
    desk = Desk(on_overdue="reject")
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(desk.requester, receiver, [ESCALATED, DECIDED])
        webhook_tasks_run()

        # when the timers scan runs after the due time
        handoff_timers_scan(now=desk.at(11))
        assert webhook_tasks_run() == ["delivered", "delivered"]

        # then both arrived, verified, saying it was rejected by the system
        assert _types(receiver) == [DECIDED, ESCALATED]
        assert all(r.verified_by == [0] for r in receiver.accepted())
        assert {(r.payload["data"]["state"], r.payload["data"]["action"]) for r in receiver.accepted()} == {
            (State.REJECTED, "time_out")
        }


def test_an_expiry_is_heard_as_expired_by_subscribers_and_by_the_request_s_callback(settings):
    # given a request in review with its own callback URL, its requester subscribed to
    # expiries and decisions, and its expiry passed
    settings.WEBHOOK_CALLBACK_HOSTS = ["127.0.0.1"]
    desk = Desk()
    with (
        WebhookReceiver(secrets=[]) as receiver,
        WebhookReceiver(secrets=[callback_secret()]) as callback,
    ):
        _subscribe(desk.requester, receiver, [EXPIRED, DECIDED])
        ApprovalRequest.objects.filter(pk=desk.request.pk).update(
            callback_url=callback.url, expires_at=timezone.now() - timedelta(seconds=1)
        )
        webhook_tasks_run()

        # when the expiry runs
        expired = request_expire(request_id=desk.request.pk)
        assert expired is not None
        assert expired.state == State.EXPIRED
        assert webhook_tasks_run() == ["delivered", "delivered"]

        # then the subscriber and the callback each got one verified `request.expired`,
        # never a decision
        for endpoint in (receiver, callback):
            [received] = endpoint.accepted()
            assert received.verified_by == [0]
            assert received.payload["type"] == EXPIRED
            assert (received.payload["data"]["state"], received.payload["data"]["action"]) == (
                State.EXPIRED,
                "expire",
            )


def test_an_expiry_that_escalates_is_heard_as_escalated_not_expired():
    # given a request whose expiry escalates to a lead, its requester subscribed
    lead = make_approver(GroupFactory.create(name="leads"))
    desk = Desk()
    ApprovalRequest.objects.filter(pk=desk.request.pk).update(
        on_expiry=OnExpiry.ESCALATE,
        expiry_escalate_user=lead,
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(desk.requester, receiver, [ESCALATED, EXPIRED])

        # when the expiry runs
        request_expire(request_id=desk.request.pk)
        assert webhook_tasks_run() == ["delivered"]

        # then the subscriber heard of an escalation, and the request is still in review
        assert _types(receiver) == [ESCALATED]
        assert receiver.accepted()[0].payload["data"]["state"] == State.IN_REVIEW
