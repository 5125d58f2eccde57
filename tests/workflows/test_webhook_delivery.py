"""Webhook delivery against a real local HTTP receiver that verifies each signature with
the `standardwebhooks` package: written with the transition, sent by the task, retried
with the same webhook-id, dead after the last attempt, redelivered by hand, signed with
both secrets during a rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from approvals.models import RequestType
from approvals.services import request_act
from tests.factories import make_request
from tests.webhook_receiver import WebhookReceiver, webhook_fanouts_run, webhook_tasks_run
from workflows import errors, outbox
from workflows.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEventType
from workflows.outbox import RelayResult
from workflows.webhooks.events import DELIVER_TASK
from workflows.webhooks.sending import webhook_delivery_attempt
from workflows.webhooks.services import (
    webhook_delivery_redeliver,
    webhook_subscription_create,
    webhook_subscription_rotate,
    webhook_subscription_update,
)

pytestmark = pytest.mark.django_db

SUBMITTED = WebhookEventType.REQUEST_SUBMITTED.value
DECIDED = WebhookEventType.REQUEST_DECIDED.value


@pytest.fixture(autouse=True)
def _quick_retries(settings) -> None:
    # Retries due at once, so a test drives the whole schedule without waiting.
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    settings.WEBHOOK_TIMEOUT = 5


def _subscribe(owner: User, receiver: WebhookReceiver, types: list[str]) -> str:
    made = webhook_subscription_create(owner=owner, target_url=receiver.url, event_types=types)
    receiver.secrets.append(made.secret)
    return made.secret


def test_a_submission_reaches_the_receiver_after_failures_with_the_same_webhook_id(
    django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    with WebhookReceiver(secrets=[], fail_first=2) as receiver:
        # given the approver subscribed to submissions, and a receiver failing twice
        _subscribe(approver, receiver, [SUBMITTED])

        # when a request is submitted, and the delivery task runs as the worker would
        with django_capture_on_commit_callbacks(execute=True):
            request = make_request(requester=requester, request_type=request_type)
        results = webhook_tasks_run()

        # then it arrived three times, each verified, always with the same webhook-id
        assert results == ["retry", "retry", "delivered"]
        assert [r.answered for r in receiver.received] == [500, 500, 204]
        assert all(r.verified_by == [0] for r in receiver.received)
        assert len({r.webhook_id for r in receiver.received}) == 1
        delivery = WebhookDelivery.objects.get()
        assert receiver.received[0].webhook_id == delivery.webhook_id
        assert receiver.received[-1].payload["type"] == SUBMITTED
        assert receiver.received[-1].payload["data"]["id"] == request.pk
        assert receiver.received[-1].payload["data"]["state"] == "in_review"
        # and every attempt is logged with its answer, excerpt and duration
        assert delivery.status == WebhookDelivery.Status.DELIVERED
        attempts = list(delivery.attempts.order_by("started_at", "id"))
        assert [(a.response_status, a.succeeded) for a in attempts] == [
            (500, False),
            (500, False),
            (204, True),
        ]
        assert attempts[0].response_excerpt == "not yet"
        assert all(a.duration_ms >= 0 for a in attempts)

        # when the task is delivered once more (a late acknowledgement), nothing is sent again
        assert webhook_delivery_attempt(delivery_id=delivery.pk).result == "skipped"
        assert len(receiver.received) == 3


def test_after_the_last_attempt_the_delivery_is_dead_and_a_redelivery_by_hand_arrives(
    django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    with WebhookReceiver(secrets=[], fail_first=100) as receiver:
        # given a receiver that keeps failing
        _subscribe(approver, receiver, [SUBMITTED])
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type)

        # when every attempt of the schedule (3 retries) has run
        results = webhook_tasks_run()

        # then there were four attempts and the delivery is a dead letter, not tried again
        assert results == ["retry", "retry", "retry", "dead"]
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == WebhookDelivery.Status.DEAD
        assert webhook_tasks_run() == []
        assert len(receiver.received) == 4

        # when the receiver is fixed and the owner redelivers it by hand
        receiver.fail_first = 0
        with django_capture_on_commit_callbacks(execute=True):
            webhook_delivery_redeliver(delivery_id=delivery.pk, owner=approver)
        assert webhook_tasks_run() == ["delivered"]

        # then it arrived with the same webhook-id, and the log says it was by hand
        assert receiver.received[-1].answered == 204
        assert {r.webhook_id for r in receiver.received} == {delivery.webhook_id}
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.DELIVERED
        last = delivery.attempts.order_by("-started_at", "-id").first()
        assert last is not None
        assert last.manual
        assert last.succeeded


def test_retries_wait_out_the_backoff_schedule(
    settings, django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    # given the default kind of schedule: 5 s, then 30 s
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 30]
    with WebhookReceiver(secrets=[], fail_first=100) as receiver:
        _subscribe(approver, receiver, [SUBMITTED])
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type)

        # when the first attempt fails
        before = timezone.now()
        assert webhook_tasks_run() == ["retry"]

        # then the next is due 5 s later, through an outbox event due then
        delivery = WebhookDelivery.objects.get()
        assert timedelta(seconds=4) < delivery.next_attempt_at - before < timedelta(seconds=7)
        retry = OutboxEvent.objects.get(destination=DELIVER_TASK, status=OutboxEvent.Status.PENDING)
        assert retry.available_at == delivery.next_attempt_at
        # and a task arriving early sends nothing
        assert webhook_delivery_attempt(delivery_id=delivery.pk).result == "skipped"
        assert len(receiver.received) == 1

        # when its time has come, the second failure waits 30 s
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        OutboxEvent.objects.filter(pk=retry.pk).update(available_at=timezone.now())
        before = timezone.now()
        assert webhook_tasks_run() == ["retry"]
        delivery.refresh_from_db()
        assert timedelta(seconds=29) < delivery.next_attempt_at - before < timedelta(seconds=32)


def test_an_attempt_in_flight_is_not_sent_twice(
    django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(approver, receiver, [SUBMITTED])
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type)
        webhook_fanouts_run()
        delivery = WebhookDelivery.objects.get()
        # given another worker holds the delivery's lease (its attempt is in flight)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            lease_until=timezone.now() + timedelta(seconds=30)
        )
        # when the task runs here too, it sends nothing
        assert webhook_delivery_attempt(delivery_id=delivery.pk).result == "skipped"
        assert receiver.received == []
        # and once the lease ran out (that worker died), the delivery goes out
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        assert webhook_delivery_attempt(delivery_id=delivery.pk).result == "delivered"
        assert len(receiver.accepted()) == 1


def test_a_delivery_whose_push_failed_goes_out_through_the_relay(
    monkeypatch,
    django_capture_on_commit_callbacks,
    approver: User,
    requester: User,
    request_type: RequestType,
):
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(approver, receiver, [SUBMITTED])
        # given the process died between its commit and its push (the broker was unreachable)
        monkeypatch.setattr(outbox, "outbox_push", _push_nothing)
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type)
        assert webhook_tasks_run() == []  # the fan-out ran; its delivery's push lease holds it
        event = OutboxEvent.objects.get(destination=DELIVER_TASK)
        assert event.status == OutboxEvent.Status.PENDING
        # when the lease is over, the relay sends it, and the receiver gets it
        OutboxEvent.objects.filter(pk=event.pk).update(available_at=timezone.now())
        assert webhook_tasks_run() == ["delivered"]
        assert len(receiver.accepted()) == 1


def _push_nothing(*, events: list[OutboxEvent]) -> RelayResult:
    return RelayResult()


def test_during_a_rotation_both_secrets_verify_and_afterwards_only_the_new_one(
    django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    with WebhookReceiver(secrets=[]) as receiver:
        old = _subscribe(approver, receiver, [SUBMITTED, DECIDED])
        subscription = approver.webhook_subscriptions.get()
        # given the secret was rotated with an overlap window
        new = webhook_subscription_rotate(
            subscription_id=subscription.pk, owner=approver, overlap=timedelta(hours=1)
        ).secret
        receiver.secrets = [old, new]

        # when a request is submitted
        with django_capture_on_commit_callbacks(execute=True):
            request = make_request(requester=requester, request_type=request_type)
        assert webhook_tasks_run() == ["delivered"]

        # then its delivery carries two signatures, and each secret alone verifies it
        first = receiver.received[-1]
        assert first.verified_by == [0, 1]
        assert len(first.signature.split(" ")) == 2

        # when the overlap is over and the request is decided
        newest = subscription.secrets.latest("created_at", "id")
        subscription.secrets.exclude(pk=newest.pk).update(retires_at=timezone.now() - timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            request_act(request_id=request.pk, action="approve", actor=approver)
        assert webhook_tasks_run() == ["delivered"]

        # then only the new secret verifies it
        last = receiver.received[-1]
        assert last.payload["type"] == DECIDED
        assert last.payload["data"]["state"] == "approved"
        assert last.verified_by == [1]


def test_a_switched_off_subscription_gets_nothing_and_its_pending_delivery_dies(
    django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(approver, receiver, [SUBMITTED])
        subscription = approver.webhook_subscriptions.get()
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type, title="First")
        webhook_fanouts_run()
        # when the owner switches it off before the task ran
        webhook_subscription_update(subscription_id=subscription.pk, owner=approver, is_active=False)
        assert webhook_tasks_run() == ["dead"]
        # then nothing was sent, and a later event makes no delivery at all
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type, title="Second")
        assert webhook_fanouts_run() == 0
        assert WebhookDelivery.objects.count() == 1
        assert receiver.received == []
        assert WebhookAttempt.objects.get().error == "The subscription is switched off."


def test_a_name_resolving_to_an_internal_address_is_never_connected_to(
    settings, django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with WebhookReceiver(secrets=[]) as receiver:
        # given no host allowed beyond the public internet, and an https endpoint whose name
        # resolves to this machine (as a DNS record pointing inwards would)
        settings.WEBHOOK_ALLOWED_HOSTS = []
        port = receiver.url.split(":")[2].split("/")[0]
        webhook_subscription_create(
            owner=approver, target_url=f"https://localhost:{port}/hooks", event_types=[SUBMITTED]
        )
        # when a request is submitted and every attempt runs
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type)
        assert webhook_tasks_run() == ["retry", "dead"]

        # then nothing reached the receiver, and the log says why
        assert receiver.received == []
        attempt = WebhookAttempt.objects.first()
        assert attempt is not None
        assert "resolves to an internal address" in attempt.error
        assert "127.0.0.1" in attempt.error


@pytest.mark.parametrize(
    "url", ["https://10.1.2.3/hook", "https://169.254.169.254/latest", "https://[::1]/x"]
)
def test_an_internal_address_is_refused_when_subscribing(settings, approver: User, url: str):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(errors.InvalidInput) as refused:
        webhook_subscription_create(owner=approver, target_url=url, event_types=[SUBMITTED])
    assert "internal address" in refused.value.field_errors["target_url"][0]


def test_a_secret_that_cannot_be_opened_is_a_logged_failure_not_a_crash(
    settings, django_capture_on_commit_callbacks, approver: User, requester: User, request_type: RequestType
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with WebhookReceiver(secrets=[]) as receiver:
        _subscribe(approver, receiver, [SUBMITTED])
        with django_capture_on_commit_callbacks(execute=True):
            make_request(requester=requester, request_type=request_type)
        # given SECRET_KEY was replaced without keeping the old one as a fallback
        settings.SECRET_KEY = "an-entirely-different-key-nobody-kept-0123456789"
        # when the attempts run, they fail on signing and end as a dead letter
        assert webhook_tasks_run() == ["retry", "dead"]
        # then nothing unsigned went out, and the log says why
        assert receiver.received == []
        assert all(a.error.startswith("Cannot sign: InvalidToken") for a in WebhookAttempt.objects.all())
