"""Webhook subscriptions over the REST API: the secret shown once (and never kept in the
clear for a replay), field errors as problems, rotation, the delivery log with attempts
against a real receiver, redelivery by hand, and a request's own `callback_url`."""

from __future__ import annotations

import json

import pytest

from approvals.models import ApprovalRequest, IdempotentRequest
from tests.approvals.api.conftest import API, ApiWorld
from tests.webhook_receiver import WebhookReceiver, webhook_fanouts_run, webhook_tasks_run
from workflows.models import WebhookDelivery, WebhookEventType, WebhookSubscription
from workflows.webhooks.services import signing_secrets

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/baton"
SUBMITTED = WebhookEventType.REQUEST_SUBMITTED.value
DECIDED = WebhookEventType.REQUEST_DECIDED.value


@pytest.fixture(autouse=True)
def _quick_retries(settings) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_TIMEOUT = 5


def _create(api: ApiWorld, *, url: str = HOOK, headers: dict[str, str] | None = None):
    return api.client("requester").post(
        f"{API}/webhooks/",
        {"target_url": url, "event_types": [SUBMITTED], "description": "CI"},
        format="json",
        headers=headers or {},
    )


def test_a_subscription_is_created_with_its_secret_shown_once_then_read_without_it(api: ApiWorld):
    # when the requester subscribes
    created = _create(api)

    # then the answer is the subscription with its signing secret, and where it lives
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert (body["target_url"], body["event_types"], body["is_active"]) == (HOOK, [SUBMITTED], True)
    assert created["Location"] == f"/api/v1/webhooks/{body['id']}/"
    # and that secret is the one that signs
    subscription = WebhookSubscription.objects.get(pk=body["id"])
    assert signing_secrets(subscription) == [body["secret"]]
    # and reading it or listing never shows the secret again
    client = api.client("requester")
    read = client.get(f"{API}/webhooks/{body['id']}/").json()
    listed = client.get(f"{API}/webhooks/").json()
    assert "secret" not in read
    assert [s["id"] for s in listed] == [body["id"]]
    assert body["secret"] not in json.dumps([read, listed])


def test_a_replayed_create_makes_nothing_twice_and_the_secret_is_never_kept_in_the_clear(api: ApiWorld):
    # given a create with an Idempotency-Key
    first = _create(api, headers={"Idempotency-Key": "sub-1"})
    secret = first.json()["secret"]

    # when the client retries it with the same key and body
    again = _create(api, headers={"Idempotency-Key": "sub-1"})

    # then it gets the same subscription, without the secret, and only one exists
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["secret"] is None
    assert WebhookSubscription.objects.count() == 1
    # and the kept answer holds no trace of the secret
    assert secret not in json.dumps(IdempotentRequest.objects.get().response_body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_url": "http://hooks.example.com/x", "event_types": [SUBMITTED]}, "target_url"),
        ({"target_url": "https://10.0.0.5/x", "event_types": [SUBMITTED]}, "target_url"),
        ({"target_url": HOOK, "event_types": ["request.eaten"]}, "event_types"),
        ({"target_url": HOOK, "event_types": []}, "event_types"),
        ({"target_url": HOOK}, "event_types"),
        ({"target_url": HOOK, "event_types": [SUBMITTED], "description": "x" * 300}, "description"),
    ],
)
def test_a_bad_subscription_is_a_400_problem_naming_the_field(api: ApiWorld, body: dict, field: str):
    response = api.client("requester").post(f"{API}/webhooks/", body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not WebhookSubscription.objects.exists()


def test_a_subscription_is_changed_switched_off_and_deleted(api: ApiWorld):
    sub_id = _create(api).json()["id"]
    client = api.client("requester")

    # when its types and state change
    changed = client.patch(
        f"{API}/webhooks/{sub_id}/", {"event_types": [DECIDED, SUBMITTED], "is_active": False}, format="json"
    )
    # then the answer and the row say so (types in their canonical order)
    assert changed.status_code == 200
    assert (changed.json()["event_types"], changed.json()["is_active"]) == ([SUBMITTED, DECIDED], False)
    assert WebhookSubscription.objects.get(pk=sub_id).is_active is False
    # and a bad URL is refused naming it, changing nothing
    refused = client.patch(f"{API}/webhooks/{sub_id}/", {"target_url": "ftp://x"}, format="json")
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == ["target_url"]
    assert WebhookSubscription.objects.get(pk=sub_id).target_url == HOOK

    # when it is deleted, it is gone
    assert client.delete(f"{API}/webhooks/{sub_id}/").status_code == 204
    assert client.get(f"{API}/webhooks/{sub_id}/").status_code == 404
    assert not WebhookSubscription.objects.exists()


def test_a_rotation_shows_the_new_secret_once_and_both_sign_during_the_overlap(api: ApiWorld):
    made = _create(api).json()

    rotated = api.client("requester").post(f"{API}/webhooks/{made['id']}/rotate/")

    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != made["secret"]
    assert signing_secrets(WebhookSubscription.objects.get(pk=made["id"])) == [new, made["secret"]]


def test_the_delivery_log_shows_each_attempt_and_a_redelivery_arrives_with_the_same_id(
    api: ApiWorld, django_capture_on_commit_callbacks
):
    with WebhookReceiver(secrets=[], fail_first=100) as receiver:
        # given a subscription whose receiver fails every attempt, and a submission
        made = _create(api, url=receiver.url).json()
        receiver.secrets.append(made["secret"])
        api.new_request()
        assert webhook_tasks_run() == ["retry", "dead"]
        client = api.client("requester")

        # when the owner reads the log
        log = client.get(f"{API}/webhooks/{made['id']}/deliveries/")

        # then it shows the dead delivery with its two failed attempts and the answers
        assert log.status_code == 200
        [delivery] = log.json()["results"]
        assert (delivery["status"], delivery["event_type"]) == ("dead", SUBMITTED)
        assert [(a["succeeded"], a["response_status"]) for a in delivery["attempts"]] == [
            (False, 500),
            (False, 500),
        ]
        assert log.json()["next_cursor"] is None
        assert client.get(f"{API}/webhooks/{made['id']}/deliveries/?status=delivered").json()["results"] == []
        bad_cursor = client.get(f"{API}/webhooks/{made['id']}/deliveries/?cursor=nonsense")
        assert bad_cursor.status_code == 400
        assert [e["field"] for e in bad_cursor.json()["errors"]] == ["cursor"]

        # when the receiver is fixed and the owner redelivers it
        receiver.fail_first = 0
        with django_capture_on_commit_callbacks(execute=True):
            again = client.post(f"{API}/webhooks/deliveries/{delivery['id']}/redeliver/")
        assert again.status_code == 202
        assert again.json()["status"] == "pending"
        assert webhook_tasks_run() == ["delivered"]

        # then it arrived verified with the same webhook-id, and the log says so
        assert receiver.accepted()[-1].webhook_id == delivery["webhook_id"]
        assert {r.webhook_id for r in receiver.received} == {delivery["webhook_id"]}
        [after] = client.get(f"{API}/webhooks/{made['id']}/deliveries/").json()["results"]
        assert after["status"] == "delivered"
        assert after["attempts"][-1]["manual"] is True


def test_a_request_created_through_the_api_carries_its_callback_url_on_an_allowed_host(
    api: ApiWorld, settings
):
    settings.WEBHOOK_CALLBACK_HOSTS = ["callbacks.example.com"]
    client = api.client("requester")

    # when a request names a callback on a host not allowed, it is refused naming the field
    refused = client.post(
        f"{API}/requests/",
        {"type": "general", "title": "Deploy", "callback_url": "https://evil.example.net/hook"},
        format="json",
    )
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["field"] == "callback_url"
    assert "evil.example.net" in error["message"]
    assert not ApprovalRequest.objects.exists()

    # and on an allowed host it is kept
    made = client.post(
        f"{API}/requests/",
        {"type": "general", "title": "Deploy", "callback_url": "https://callbacks.example.com/hook"},
        format="json",
    )
    assert made.status_code == 201
    assert ApprovalRequest.objects.get().callback_url == "https://callbacks.example.com/hook"


def test_only_the_owner_reaches_a_delivery_to_redeliver_it(api: ApiWorld):
    # given the requester's subscription with one delivery
    made = _create(api).json()
    api.new_request()
    webhook_fanouts_run()
    delivery = WebhookDelivery.objects.get()

    # when the admin tries to redeliver it, it does not exist for them
    answer = api.client("admin").post(f"{API}/webhooks/deliveries/{delivery.pk}/redeliver/")
    assert answer.status_code == 404
    assert not WebhookDelivery.objects.get().manual
    assert made["id"] == delivery.subscription_id


@pytest.mark.parametrize("role", ["other_requester", "approver", "manager", "auditor", "admin", "service"])
def test_the_list_never_shows_anyone_else_s_subscriptions(api: ApiWorld, role: str):
    # given the requester's subscription
    _create(api)
    # when someone else lists theirs, it is not there
    listed = api.client(role).get(f"{API}/webhooks/")
    assert listed.status_code == 200
    assert listed.json() == []
