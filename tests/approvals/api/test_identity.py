"""Browser sessions with CSRF, service accounts and their tokens in the audit trail."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from approvals.models import ApprovalRequest
from tests.approvals.api.conftest import API, ApiWorld
from workflows.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_a_browser_session_needs_the_csrf_token_to_write(api: ApiWorld) -> None:
    # given a browser logged in, with CSRF checks on as in a real browser
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(api.user("requester"))
    body = {"type": "general", "title": "From the browser"}
    # when it posts without the CSRF token; then 403 and nothing made
    refused = browser.post(f"{API}/requests/", body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not ApprovalRequest.objects.exists()
    # when it reads (safe) and then posts with the token from its cookie; then it works
    assert browser.get(f"{API}/requests/").status_code == 200
    browser.get("/account/tokens/")  # any page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    made = browser.post(f"{API}/requests/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert made.status_code == 201


def test_a_service_account_token_is_named_in_the_trail(api: ApiWorld) -> None:
    # given a token issued by an administrator for the service account
    out = StringIO()
    call_command("api_token_issue", "deploybot", "--name", "deploy pipeline", "--days", "30", stdout=out)
    secret = out.getvalue().strip()
    token = ApiToken.objects.get(owner=api.user("service"))
    assert token.expires_at is not None
    assert secret.startswith(f"baton_{token.prefix}_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    # when it submits a request
    response = client.post(f"{API}/requests/", {"type": "general", "title": "Deploy 4.2"}, format="json")
    assert response.status_code == 201, response.json()
    # then every entry of that call names the service account's token
    entries = AuditEntry.objects.filter(object_id=str(response.json()["id"]))
    assert {e.actor_id for e in entries} == {api.user("service").pk}
    assert all(
        e.data["via"] == {"token_id": token.pk, "token_name": "deploy pipeline", "service_account": True}
        for e in entries
    )
    # and a person's action through the web (no token) names none
    web = Client()
    web.force_login(api.user("approver"))
    token_csrf = web.get("/account/tokens/") and web.cookies["csrftoken"].value
    approved = web.post(
        f"{API}/requests/{response.json()['id']}/actions/approve/",
        {},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token_csrf,
    )
    assert approved.status_code == 200
    assert "via" not in AuditEntry.objects.get(action="approve").data


def test_the_wait_endpoint_is_in_the_schema_with_bearer_auth(api: ApiWorld) -> None:
    schema = Client().get("/api/schema/?format=json").json()
    wait = schema["paths"]["/api/v1/requests/{id}/wait/"]["get"]
    assert {p["name"] for p in wait["parameters"]} == {"id", "seconds", "If-None-Match"}
    assert set(wait["responses"]) == {"200", "304", "400", "401", "404", "429"}
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
