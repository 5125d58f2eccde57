"""The webhook pages of one's account: create (the secret shown once), edit the event
types, rotate, read the delivery log, redeliver, delete; field errors on bad input; and
nobody but the owner reaches any of it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from tests.approvals.conftest import ROLES, World
from tests.webhook_receiver import webhook_fanouts_run
from workflows.models import WebhookAttempt, WebhookDelivery, WebhookEventType, WebhookSubscription
from workflows.webhooks.services import secret_open, webhook_subscription_create

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/baton"
SUBMITTED = WebhookEventType.REQUEST_SUBMITTED.value
DECIDED = WebhookEventType.REQUEST_DECIDED.value
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def test_the_account_page_links_to_the_webhooks(client_as: Callable[[str], Client]):
    page = client_as("approver").get(reverse("accounts:account"))
    assert reverse("approvals:webhooks") in page.content.decode()


def test_creating_a_subscription_shows_its_secret_once(world: World, client_as: Callable[[str], Client]):
    client = client_as("approver")
    # when the approver creates a subscription
    response = client.post(
        reverse("approvals:webhooks"),
        {"target_url": HOOK, "description": "CI", "event_types": [SUBMITTED, DECIDED]},
    )
    subscription = WebhookSubscription.objects.get(owner=world.user("approver"))
    assert response.status_code == 302
    assert response["Location"] == reverse("approvals:webhook_detail", args=[subscription.pk])
    assert subscription.event_types == [SUBMITTED, DECIDED]

    # then its page shows the secret the subscription signs with, once
    first = client.get(response["Location"]).content.decode()
    shown = SECRET.findall(first)
    assert shown == [secret_open(subscription.secrets.get().sealed)]
    again = client.get(response["Location"]).content.decode()
    assert not SECRET.findall(again)
    # and the list shows it
    assert HOOK in client.get(reverse("approvals:webhooks")).content.decode()


def test_a_bad_url_is_a_field_error_and_creates_nothing(world: World, client_as: Callable[[str], Client]):
    response = client_as("approver").post(
        reverse("approvals:webhooks"),
        {"target_url": "http://hooks.example.com/x", "event_types": [SUBMITTED]},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-field="target_url"' in page
    assert "Use https://" in page
    assert not WebhookSubscription.objects.exists()


def test_no_event_type_is_a_field_error(client_as: Callable[[str], Client]):
    response = client_as("approver").post(reverse("approvals:webhooks"), {"target_url": HOOK})
    assert response.status_code == 400
    assert "Choose at least one event type." in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_the_owner_edits_the_event_types_and_switches_it_off(
    world: World, client_as: Callable[[str], Client]
):
    made = webhook_subscription_create(owner=world.user("approver"), target_url=HOOK, event_types=[SUBMITTED])
    url = reverse("approvals:webhook_detail", args=[made.subscription.pk])
    response = client_as("approver").post(url, {"target_url": HOOK, "event_types": [DECIDED]})
    assert response.status_code == 302
    made.subscription.refresh_from_db()
    assert made.subscription.event_types == [DECIDED]
    assert made.subscription.is_active is False  # the box was not ticked


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_signing(
    world: World, client_as: Callable[[str], Client]
):
    made = webhook_subscription_create(owner=world.user("approver"), target_url=HOOK, event_types=[SUBMITTED])
    client = client_as("approver")
    response = client.post(reverse("approvals:webhook_rotate", args=[made.subscription.pk]))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    secrets = made.subscription.secrets.order_by("created_at", "id")
    assert len(secrets) == 2
    old, new = secrets
    assert SECRET.findall(page) == [secret_open(new.sealed)]
    assert new.retires_at is None
    assert old.retires_at is not None  # it retires after the overlap, not at once
    assert made.secret == secret_open(old.sealed)


def test_the_log_shows_attempts_and_a_delivery_is_sent_again_by_hand(
    world: World, client_as: Callable[[str], Client]
):
    # given a subscription whose delivery failed and is dead
    owner = world.user("requester")
    made = webhook_subscription_create(owner=owner, target_url=HOOK, event_types=[SUBMITTED])
    world.new_request()
    webhook_fanouts_run()
    delivery = WebhookDelivery.objects.get()
    WebhookAttempt.objects.create(
        delivery=delivery, response_status=503, response_excerpt="down for maintenance"
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.DEAD, failures=4)
    client = client_as("requester")

    # when the owner reads the log
    page = client.get(reverse("approvals:webhook_detail", args=[made.subscription.pk])).content.decode()
    # then it shows the delivery, its status and the attempt's answer
    assert delivery.webhook_id in page
    assert "Dead letter" in page
    assert "HTTP 503" in page
    assert "down for maintenance" in page
    dead_only = client.get(
        reverse("approvals:webhook_detail", args=[made.subscription.pk]) + "?status=delivered"
    )
    assert delivery.webhook_id not in dead_only.content.decode()

    # when they send it again
    response = client.post(reverse("approvals:webhook_redeliver", args=[delivery.pk]))
    # then it is pending again with a fresh schedule
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failures, delivery.manual) == (WebhookDelivery.Status.PENDING, 0, True)


def test_the_owner_deletes_a_subscription(world: World, client_as: Callable[[str], Client]):
    made = webhook_subscription_create(owner=world.user("approver"), target_url=HOOK, event_types=[SUBMITTED])
    response = client_as("approver").post(reverse("approvals:webhook_delete", args=[made.subscription.pk]))
    assert response.status_code == 302
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("role", [r for r in ROLES if r != "requester"])
def test_nobody_else_reaches_a_subscription_or_its_log(
    world: World, client_as: Callable[[str], Client], role: str
):
    # given the requester's subscription with a delivery
    made = webhook_subscription_create(
        owner=world.user("requester"), target_url=HOOK, event_types=[SUBMITTED]
    )
    world.new_request()
    webhook_fanouts_run()
    delivery = WebhookDelivery.objects.get()
    client = client_as(role)
    pk = made.subscription.pk
    reads = [reverse("approvals:webhook_detail", args=[pk])]
    writes = [
        reverse("approvals:webhook_detail", args=[pk]),
        reverse("approvals:webhook_rotate", args=[pk]),
        reverse("approvals:webhook_delete", args=[pk]),
        reverse("approvals:webhook_redeliver", args=[delivery.pk]),
    ]
    # when anyone else (even an administrator) reads or changes it
    answers = [client.get(url).status_code for url in reads]
    answers += [
        client.post(url, {"target_url": HOOK, "event_types": [DECIDED]}).status_code for url in writes
    ]

    # then the anonymous are sent to log in, everyone else is told it does not exist
    expected = 302 if role == "anonymous" else 404
    assert answers == [expected] * len(answers)
    # and nothing changed
    made.subscription.refresh_from_db()
    assert made.subscription.event_types == [SUBMITTED]
    assert made.subscription.secrets.count() == 1
    delivery.refresh_from_db()
    assert delivery.manual is False
    # and their own list does not show it
    if role != "anonymous":
        assert HOOK not in client.get(reverse("approvals:webhooks")).content.decode()


def test_the_log_pages_by_keyset_in_a_constant_number_of_queries(
    world: World, client_as: Callable[[str], Client], django_assert_max_num_queries
):
    # given 60 deliveries (20 requests, three events each), every one with an attempt
    owner = world.user("requester")
    made = webhook_subscription_create(
        owner=owner, target_url=HOOK, event_types=list(WebhookEventType.values)
    )
    for i in range(20):
        world.new_request(title=f"Item {i}")
    webhook_fanouts_run()
    for delivery in WebhookDelivery.objects.all():
        WebhookAttempt.objects.create(delivery=delivery, response_status=500)
    client = client_as("requester")
    url = reverse("approvals:webhook_detail", args=[made.subscription.pk])

    # when the owner reads the first page, then the older one
    client.get(url)  # warm the session and the user's permissions
    with django_assert_max_num_queries(12):
        first = client.get(url)
    older = re.search(r'href="\?cursor=([^"]+)" data-testid="webhook-log-older"', first.content.decode())
    assert older is not None
    second = client.get(f"{url}?cursor={older.group(1)}")

    # then together they list each delivery exactly once
    shown = re.findall(r'data-delivery="([0-9a-f-]+)"', first.content.decode() + second.content.decode())
    assert len(shown) == 60
    assert set(shown) == {str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)}
    assert "webhook-log-older" not in second.content.decode()


def test_a_malformed_cursor_is_a_clear_400(world: World, client_as: Callable[[str], Client]):
    made = webhook_subscription_create(
        owner=world.user("requester"), target_url=HOOK, event_types=[SUBMITTED]
    )
    response = client_as("requester").get(
        reverse("approvals:webhook_detail", args=[made.subscription.pk]) + "?cursor=yesterday"
    )
    assert response.status_code == 400
    assert "The page cursor is not valid." in response.content.decode()
