"""The same Idempotency-Key sent by eight concurrent retries on PostgreSQL: one request is
made; every other answer is the first one replayed or a 409 while it still runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.tokens import api_token_create
from approvals.models import ApprovalRequest
from tests.integration.conftest import run_concurrently

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_concurrent_retries_with_one_key_make_one_request(requester: Any, request_type: Any) -> None:
    # given a client's token
    secret = api_token_create(owner=requester, name="retrying client").secret
    body = {"type": request_type.slug, "title": "Deploy 4.2"}

    def post(_: int) -> tuple[int, Any]:
        response = Client().post(
            "/api/v1/requests/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
            HTTP_IDEMPOTENCY_KEY="deploy-4.2",
        )
        return response.status_code, response.json()

    # when eight retries arrive at once
    outcomes = run_concurrently(8, post)

    # then exactly one request exists, and every answer is it (201) or "still running" (409)
    assert [o.error for o in outcomes] == [None] * 8
    statuses = [o.value[0] for o in outcomes]
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert ApprovalRequest.objects.count() == 1
    made = ApprovalRequest.objects.get()
    assert {o.value[1]["id"] for o in outcomes if o.value[0] == 201} == {made.pk}
    assert all(o.value[1]["code"] == "idempotency_key_in_use" for o in outcomes if o.value[0] == 409)
