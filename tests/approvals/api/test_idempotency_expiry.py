"""Idempotent POSTs, expiry at creation and `request_expire`, and the tokens page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from approvals.expiry import request_expire
from approvals.models import ApprovalRequest, IdempotentRequest, OnExpiry, State
from approvals.tasks import idempotency_purge_task
from tests.approvals.api.conftest import API, ApiWorld
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db


def _create(client: APIClient, key: str, title: str = "Desk") -> Any:
    return client.post(
        f"{API}/requests/", {"type": "general", "title": title}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_replay_with_same_key_and_body_returns_the_first_answer_and_changes_nothing(api: ApiWorld) -> None:
    client = api.client("requester")
    first = _create(client, "k-1")
    again = _create(client, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert again["ETag"] == first["ETag"]
    assert ApprovalRequest.objects.count() == 1


def test_same_key_with_another_body_is_422(api: ApiWorld) -> None:
    client = api.client("requester")
    _create(client, "k-2")
    other = _create(client, "k-2", title="Chair")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert ApprovalRequest.objects.count() == 1


def test_key_still_running_is_409(api: ApiWorld) -> None:
    # given a first call whose row is claimed and not yet answered
    client = api.client("requester")
    first = _create(client, "k-3")
    IdempotentRequest.objects.filter(key="k-3").update(status=None, response_body=None)
    # when it is retried meanwhile; then 409, and nothing is created twice
    retry = _create(client, "k-3")
    assert retry.status_code == 409
    assert retry["Retry-After"] == "1"
    assert ApprovalRequest.objects.count() == 1
    assert first.status_code == 201


def test_keys_are_scoped_to_the_caller(api: ApiWorld) -> None:
    assert _create(api.client("requester"), "shared").status_code == 201
    assert _create(api.client("other_requester"), "shared").status_code == 201
    assert ApprovalRequest.objects.count() == 2


def test_an_action_replayed_acts_once(api: ApiWorld) -> None:
    req = api.new_request()
    client = api.client("approver")
    url = f"{API}/requests/{req.pk}/actions/approve/"
    first = client.post(url, {"comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="approve-1")
    second = client.post(url, {"comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY="approve-1")
    assert first.status_code == second.status_code == 200
    assert AuditEntry.objects.filter(action="approve").count() == 1


def test_expiry_is_taken_at_creation_and_shown(api: ApiWorld) -> None:
    response = api.client("requester").post(
        f"{API}/requests/",
        {
            "type": "general",
            "title": "Deploy",
            "expires_in": 600,
            "on_expiry": "escalate",
            "escalate_to_user": "maria",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["on_expiry"] == OnExpiry.ESCALATE
    assert body["escalate_to"] == {"user": "maria", "group": None}
    assert body["expires_at"] is not None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"expires_in": -5}, "expires_in"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_in": 60, "on_expiry": "escalate"}, "escalate_to"),
        ({"expires_in": 60, "expires_at": "2999-01-01T00:00:00Z"}, "expires_in"),
    ],
)
def test_bad_expiry_is_a_400_naming_the_field(api: ApiWorld, extra: dict[str, object], field: str) -> None:
    response = api.client("requester").post(
        f"{API}/requests/", {"type": "general", "title": "x", **extra}, format="json"
    )
    assert response.status_code == 400
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not ApprovalRequest.objects.exists()


def _past_due(req: ApprovalRequest, **fields: object) -> None:
    ApprovalRequest.objects.filter(pk=req.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1), **fields
    )


def test_request_expire_ends_it_as_expired_by_the_system(api: ApiWorld) -> None:
    req = api.new_request()
    _past_due(req)
    expired = request_expire(request_id=req.pk)
    assert expired is not None
    assert expired.state == State.EXPIRED
    assert expired.decided_at is None  # never reported as a decision
    entry = AuditEntry.objects.filter(action="expire").get()
    assert entry.actor_id is None
    assert entry.target == State.EXPIRED
    assert not Handoff.objects.for_instance(req).filter(closed_at__isnull=True).exists()
    # idempotent: a second call does nothing
    assert request_expire(request_id=req.pk) is None
    assert AuditEntry.objects.filter(action="expire").count() == 1


def test_request_expire_leaves_a_decided_or_not_yet_due_request(api: ApiWorld) -> None:
    req = api.new_request()
    assert request_expire(request_id=req.pk) is None  # no expiry at all
    ApprovalRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    assert request_expire(request_id=req.pk) is None  # not yet due
    api.client("approver").post(f"{API}/requests/{req.pk}/actions/approve/", {}, format="json")
    _past_due(req)
    assert request_expire(request_id=req.pk) is None
    req.refresh_from_db()
    assert req.state == State.APPROVED


def test_request_expire_escalates_once_to_the_named_person(api: ApiWorld) -> None:
    req = api.new_request()
    _past_due(req, on_expiry=OnExpiry.ESCALATE, expiry_escalate_user=api.user("manager"))
    escalated = request_expire(request_id=req.pk)
    assert escalated is not None
    assert escalated.state == State.IN_REVIEW
    holder = Handoff.objects.for_instance(req).get(closed_at__isnull=True)
    assert holder.assignee == api.user("manager")
    assert AuditEntry.objects.filter(action="reassign", actor__isnull=True).count() == 1
    assert request_expire(request_id=req.pk) is None


def test_people_cannot_expire_a_request(api: ApiWorld) -> None:
    req = api.new_request()
    response = api.client("manager").post(f"{API}/requests/{req.pk}/actions/expire/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "action"


def test_tokens_page_shows_a_new_secret_once_and_revokes(api: ApiWorld) -> None:
    client = Client()
    client.force_login(api.user("requester"))
    created = client.post("/account/tokens/", {"name": "CI", "read_only": "on"})
    secret = created.context["issued"].secret
    assert secret in created.content.decode()
    token = ApiToken.objects.get(owner=api.user("requester"))
    assert token.read_only
    listed = client.get("/account/tokens/").content.decode()
    assert secret not in listed
    assert token.prefix in listed
    client.post(f"/account/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    # someone else's token is a 404
    other = Client()
    other.force_login(api.user("other_requester"))
    assert other.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404


def test_service_account_cannot_log_in_with_a_password(api: ApiWorld) -> None:
    service = api.user("service")
    service.set_password("pw-123456")
    service.save()
    client = Client()
    response = client.post("/login/", {"username": service.username, "password": "pw-123456"})
    # the login form comes back with its error; no session is made
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_keys_older_than_a_day_are_purged_and_the_key_is_free_again(api: ApiWorld) -> None:
    client = api.client("requester")
    _create(client, "daily")
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_purge_task() == 1
    again = _create(client, "daily")
    assert again.status_code == 201
    assert ApprovalRequest.objects.count() == 2


def test_a_form_encoded_post_with_a_key_is_answered_and_replayed_not_a_500(api: ApiWorld) -> None:
    # given a multipart body (its bytes are parsed as they stream in, never kept whole)
    client = api.client("manager")
    form = {"to_user": "nobody-by-this-name", "reason": "away"}
    # when it is posted with an Idempotency-Key, then retried with the same key and body
    first = client.post(
        f"{API}/handoffs/7465430/reassign/", form, format="multipart", HTTP_IDEMPOTENCY_KEY="f-1"
    )
    again = client.post(
        f"{API}/handoffs/7465430/reassign/", form, format="multipart", HTTP_IDEMPOTENCY_KEY="f-1"
    )
    # then a problem naming the field (no such person), not a 500, and the retry gets the same
    assert first.status_code == again.status_code == 400
    assert first["Content-Type"] == "application/problem+json"
    assert again.json() == first.json()
    # and another body under the same key is refused as such
    other = client.post(
        f"{API}/handoffs/7465430/reassign/",
        {**form, "reason": "ill"},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="f-1",
    )
    assert other.status_code == 422
