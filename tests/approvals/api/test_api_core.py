"""The API's errors, tokens and requests, end to end through HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.tokens import api_token_revoke
from approvals.api.auth import CallerRateThrottle
from approvals.models import ApprovalRequest, State
from tests.approvals.api.conftest import API, ApiWorld, expired_token_secret
from workflows.models import AuditEntry

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def test_anonymous_gets_a_401_problem_with_the_bearer_challenge(api: ApiWorld) -> None:
    # given no credentials; when a list is asked for
    response = api.client(None).get(f"{API}/requests/")
    # then a 401 problem saying how to authenticate
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 401
    assert response.json()["type"].endswith("not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_revoked_tokens_are_refused_with_their_reason(api: ApiWorld) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired_token_secret(api, 'requester')}")
    expired = client.get(f"{API}/requests/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]

    revoked_client = api.client("requester")
    api_token_revoke(token_id=api.tokens["requester"].pk, actor=api.user("requester"))
    revoked = revoked_client.get(f"{API}/requests/")
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]


def test_a_deactivated_persons_token_stops_working_at_once(api: ApiWorld) -> None:
    # given a requester whose token works
    client = api.client("requester")
    assert client.get(f"{API}/requests/").status_code == 200
    # when an administrator deactivates the account
    person = api.user("requester")
    person.is_active = False
    person.save(update_fields=["is_active"])
    # then the very next call with the same token is a 401 that says why
    refused = client.get(f"{API}/requests/")
    assert refused.status_code == 401
    assert "not active" in refused.json()["detail"]


def test_token_is_stored_only_as_a_digest(api: ApiWorld) -> None:
    secret = api.token_for("requester")
    token = ApiToken.objects.get(pk=api.tokens["requester"].pk)
    assert secret.split("_")[-1] not in token.secret_sha256
    assert len(token.secret_sha256) == 64
    assert secret.startswith(f"baton_{token.prefix}_")


def test_read_only_token_reads_but_may_not_write(api: ApiWorld) -> None:
    client = api.client("requester", read_only=True)
    assert client.get(f"{API}/requests/").status_code == 200
    response = client.post(f"{API}/requests/", {"type": "general", "title": "x"}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert not ApprovalRequest.objects.exists()


def test_submit_with_a_bad_field_is_a_400_naming_the_field(api: ApiWorld) -> None:
    client = api.client("requester")
    response = client.post(
        f"{API}/requests/", {"type": "general", "title": "", "payload": {"amount": -3}}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"title", "payload.amount"} <= fields
    assert not ApprovalRequest.objects.exists()


def test_malformed_json_is_a_400_problem_not_a_500(api: ApiWorld) -> None:
    response = api.client("requester").post(f"{API}/requests/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_submit_read_approve_and_the_trail_names_the_token(api: ApiWorld) -> None:
    # given the requester submits through the API
    created = api.client("requester").post(
        f"{API}/requests/",
        {"type": "general", "title": "New laptop", "payload": {"amount": 900}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["state"] == State.IN_REVIEW
    assert body["payload_digest"].startswith("sha256:")
    assert created["ETag"] == f'"{body["id"]}-v{body["version"]}"'
    # when the approver reads it, they see approve available
    approver = api.client("approver", name="ci-approver")
    read = approver.get(f"{API}/requests/{body['id']}/").json()
    options = {a["name"]: a for a in read["actions"]}
    assert options["approve"]["available"] is True
    # and approves it with If-Match on the version read
    approved = approver.post(
        f"{API}/requests/{body['id']}/actions/approve/",
        {"comment": "fine"},
        format="json",
        HTTP_IF_MATCH=f'"{body["id"]}-v{read["version"]}"',
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["state"] == State.APPROVED
    # then the audit entry of the approval names the token used
    entry = AuditEntry.objects.filter(action="approve").get()
    assert entry.data["via"] == {
        "token_id": api.tokens["approver"].pk,
        "token_name": "ci-approver",
        "service_account": False,
    }
    assert approved.json()["history"][-1]["via"]["token_name"] == "ci-approver"


def test_stale_if_match_is_412_and_changes_nothing(api: ApiWorld) -> None:
    req = api.new_request()
    response = api.client("approver").post(
        f"{API}/requests/{req.pk}/actions/approve/",
        {},
        format="json",
        HTTP_IF_MATCH=f'"{req.pk}-v{req.version - 1}"',
    )
    assert response.status_code == 412
    assert response.json()["version"] == req.version
    req.refresh_from_db()
    assert req.state == State.IN_REVIEW


def test_wrong_state_is_409_with_the_current_state(api: ApiWorld) -> None:
    req = api.new_request()
    client = api.client("requester")
    assert client.post(f"{API}/requests/{req.pk}/actions/withdraw/", {}, format="json").status_code == 200
    again = client.post(f"{API}/requests/{req.pk}/actions/withdraw/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["state"] == State.WITHDRAWN


def test_forbidden_to_act_is_403_with_the_reason(api: ApiWorld) -> None:
    req = api.new_request()
    response = api.client("requester").post(f"{API}/requests/{req.pk}/actions/approve/", {}, format="json")
    # the requester sees it but may not approve their own request
    assert response.status_code == 403
    assert response.json()["detail"]


def test_not_found_and_not_allowed_to_see_are_the_same_404(api: ApiWorld) -> None:
    req = api.new_request()
    client = api.client("other_requester")
    hidden = client.get(f"{API}/requests/{req.pk}/")
    missing = client.get(f"{API}/requests/{req.pk + 1000}/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"]
    acted = client.post(f"{API}/requests/{req.pk}/actions/withdraw/", {}, format="json")
    assert acted.status_code == 404


def test_list_filters_and_pages_by_cursor_without_leaking(api: ApiWorld) -> None:
    mine = [api.new_request(title=f"mine {i}") for i in range(3)]
    api.new_request(title="theirs", role="other_requester")
    client = api.client("requester")
    first = client.get(f"{API}/requests/", {"page_size": 2}).json()
    assert [r["id"] for r in first["results"]] == [mine[2].pk, mine[1].pk]
    second = client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [mine[0].pk]
    drafts = client.get(f"{API}/requests/", {"state": "draft"}).json()
    assert drafts["results"] == []
    by_type = client.get(f"{API}/requests/", {"type": "general", "requester": "oscar"}).json()
    assert by_type["results"] == []


def test_draft_then_submit_and_resubmit_a_revision(api: ApiWorld) -> None:
    client = api.client("requester")
    draft = client.post(
        f"{API}/requests/", {"type": "general", "title": "Chair", "submit": False}, format="json"
    ).json()
    assert draft["state"] == State.DRAFT
    submitted = client.post(f"{API}/requests/{draft['id']}/actions/submit/", {}, format="json").json()
    assert submitted["state"] == State.IN_REVIEW
    asked = api.client("approver").post(
        f"{API}/requests/{draft['id']}/actions/request_changes/", {"comment": "Which chair?"}, format="json"
    )
    assert asked.json()["state"] == State.CHANGES_REQUESTED
    resubmitted = client.post(
        f"{API}/requests/{draft['id']}/actions/resubmit/",
        {"data": {"title": "Chair, model X", "payload": {"amount": 120}}},
        format="json",
    ).json()
    assert resubmitted["state"] == State.IN_REVIEW
    assert resubmitted["revision"] == 2
    assert [r["number"] for r in resubmitted["revisions"]] == [1, 2]


REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize("backend", ["default", "redis"])
def test_throttle_per_token_answers_429_with_retry_after(
    api: ApiWorld, monkeypatch: pytest.MonkeyPatch, settings: Any, backend: str
) -> None:
    # given the cache the throttle counts in (the tests' own, or Redis as in production)
    if backend == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs REDIS_URL")
        prefix = f"throttle-test-{uuid.uuid4().hex}"
        settings.CACHES = {
            "default": {"BACKEND": REDIS_CACHE, "LOCATION": settings.REDIS_URL, "KEY_PREFIX": prefix}
        }
    # and a budget of two calls a minute per token (in one window: the clock stands still)
    monkeypatch.setattr(CallerRateThrottle, "THROTTLE_RATES", {"api": "2/min"})
    monkeypatch.setattr(CallerRateThrottle, "timer", lambda self: 1_800_000_030.0)
    client, other = api.client("requester"), api.client("approver")
    assert [client.get(f"{API}/request-types/").status_code for _ in range(2)] == [200, 200]
    # when the third call comes; then 429 saying when to come back
    third = client.get(f"{API}/request-types/")
    assert third.status_code == 429
    assert int(third["Retry-After"]) == 30
    assert third["Content-Type"] == PROBLEM
    # and another token has its own budget
    assert other.get(f"{API}/request-types/").status_code == 200


def test_schema_and_docs_are_served_locally(api: ApiWorld) -> None:
    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.1")
    assert "/api/v1/requests/{id}/actions/{name}/" in schema.json()["paths"]
    docs = client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs


def test_a_moment_with_an_offset_postgres_refuses_is_compared_in_utc(api: ApiWorld) -> None:
    # found by schemathesis: PostgreSQL refuses '+18:08' in a timestamp literal (a 500 before)
    req = api.new_request()
    response = api.client("requester").get(f"{API}/requests/", {"created_after": "0272-01-20T07:26:06+18:08"})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [req.pk]


def test_unknown_api_paths_answer_a_404_problem_even_with_a_newline(api: ApiWorld) -> None:
    client = api.client("requester")
    for path in (f"{API}/nothing-here/", f"{API}/requests/1/actions/Jz%0A/", f"{API}/handoffs/-5/claim/"):
        response = client.post(path, {}, format="json")
        assert response.status_code == 404, path
        assert response["Content-Type"] == PROBLEM
