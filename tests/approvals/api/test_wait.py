"""The long-poll: answers at once when the client is behind, 304 when nothing changed,
400 above the cap, and never shows what the caller may not see."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from approvals.api.auth import CallerRateThrottle
from approvals.services import request_act
from tests.approvals.api.conftest import API, ApiWorld

pytestmark = pytest.mark.django_db


def _wait(api: ApiWorld, role: str, request_id: int, query: str = "", **headers: str) -> Any:
    headers = {"Authorization": f"Bearer {api.token_for(role)}", **headers}
    return async_to_sync(AsyncClient().get)(f"{API}/requests/{request_id}/wait/{query}", headers=headers)


def test_seconds_above_the_cap_is_a_400_problem(api: ApiWorld) -> None:
    req = api.new_request()
    response = _wait(api, "requester", req.pk, "?seconds=61")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "seconds"


def test_answers_at_once_when_the_client_holds_an_older_version(api: ApiWorld) -> None:
    req = api.new_request()
    old = f'"{req.pk}-v{req.version}"'
    request_act(request_id=req.pk, action="approve", actor=api.user("approver"))
    response = _wait(api, "requester", req.pk, "?seconds=30", **{"If-None-Match": old})
    assert response.status_code == 200
    assert response.json()["state"] == "approved"
    assert response["ETag"] != old


def test_unchanged_until_the_end_is_304_with_if_none_match(api: ApiWorld) -> None:
    req = api.new_request()
    current = f'"{req.pk}-v{req.version}"'
    response = _wait(api, "requester", req.pk, "?seconds=1", **{"If-None-Match": current})
    assert response.status_code == 304
    assert response["ETag"] == current


def test_unchanged_without_if_none_match_is_200_with_the_representation(api: ApiWorld) -> None:
    req = api.new_request()
    response = _wait(api, "requester", req.pk, "?seconds=0")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == req.version


def test_a_request_the_caller_may_not_see_is_404_and_anonymous_is_401(api: ApiWorld) -> None:
    req = api.new_request()
    assert _wait(api, "other_requester", req.pk, "?seconds=0").status_code == 404
    anonymous = async_to_sync(AsyncClient().get)(f"{API}/requests/{req.pk}/wait/?seconds=0")
    assert anonymous.status_code == 401


def test_the_wait_counts_against_the_token_budget(api: ApiWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CallerRateThrottle, "THROTTLE_RATES", {"api": "1/min"})
    req = api.new_request()
    headers = {"Authorization": f"Bearer {api.token_for('requester')}"}
    url = f"{API}/requests/{req.pk}/wait/?seconds=0"
    assert async_to_sync(AsyncClient().get)(url, headers=headers).status_code == 200
    second = async_to_sync(AsyncClient().get)(url, headers=headers)
    assert second.status_code == 429
    assert int(second["Retry-After"]) > 0
