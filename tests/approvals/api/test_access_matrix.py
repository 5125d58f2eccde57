"""Every endpoint and method against every role: nobody reads or changes what they may
not, and lists never leak foreign items. Each cell runs on its own fresh request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tokens import api_token_create
from approvals.delegations import delegation_create
from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.approvals.api.conftest import API, ApiWorld, expired_token_secret
from tests.factories import RequestTypeFactory, UserFactory, make_request
from workflows.models import Handoff, WebhookDelivery
from workflows.services import handoff_claim
from workflows.webhooks.services import webhook_subscription_create

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "requester",
    "other_requester",
    "other_approver",
    "approver",
    "manager",
    "auditor",
    "service",
    "admin",
    "read_only",
    "expired",
)
SEES = {"requester", "approver", "manager", "auditor", "admin", "read_only"}
UNAUTHENTICATED = {"anonymous": 401, "expired": 401}


def _secret(api: ApiWorld, role: str) -> str | None:
    if role == "anonymous":
        return None
    if role == "expired":
        return expired_token_secret(api, "requester")
    if role == "read_only":
        return api.token_for("requester", read_only=True)
    return api.token_for(role)


class Caller(APIClient):
    """An API client that also knows its Authorization header, for the async wait path."""

    def __init__(self, authorization: str | None) -> None:
        super().__init__()
        self.authorization = authorization
        if authorization is not None:
            self.credentials(HTTP_AUTHORIZATION=authorization)


def _client(api: ApiWorld, role: str) -> Caller:
    secret = _secret(api, role)
    return Caller(f"Bearer {secret}" if secret is not None else None)


def _expect(default: int, **by_role: int) -> dict[str, int]:
    table = dict.fromkeys(ROLES, default)
    table.update(UNAUTHENTICATED)
    table.update(by_role)
    return table


Cell = Callable[[ApiWorld, Caller, ApprovalRequest], Any]


def _wait(api: ApiWorld, client: Caller, req: ApprovalRequest) -> Any:
    headers = {"Authorization": client.authorization} if client.authorization else {}
    return async_to_sync(AsyncClient().get)(f"{API}/requests/{req.pk}/wait/?seconds=0", headers=headers)


def _handoff(req: ApprovalRequest) -> Handoff:
    return Handoff.objects.for_instance(req).get(closed_at__isnull=True)


def _claimed(api: ApiWorld, req: ApprovalRequest) -> Handoff:
    """The request's handoff, claimed by the approver (only its claimer may release it)."""
    return handoff_claim(handoff_id=_handoff(req).pk, actor=api.user("approver"))


def _changes_asked(api: ApiWorld, req: ApprovalRequest) -> ApprovalRequest:
    """The request sent back to its requester by the approver (so it may be resubmitted)."""
    request_act(request_id=req.pk, action="request_changes", actor=api.user("approver"), comment="Which?")
    return req


def _webhook(api: ApiWorld) -> int:
    """A webhook subscription of the requester's (the owner: nobody else may reach it)."""
    return webhook_subscription_create(
        owner=api.user("requester"), target_url="https://hooks.example.com/x", event_types=["request.decided"]
    ).subscription.pk


def _delivery(api: ApiWorld, req: ApprovalRequest) -> Any:
    """A dead delivery of one of the requester's subscriptions."""
    return WebhookDelivery.objects.create(
        subscription_id=_webhook(api),
        target_url="https://hooks.example.com/x",
        event_type="request.decided",
        instance_ref=req.workflow_ref(),
        status=WebhookDelivery.Status.DEAD,
    ).pk


# Webhooks are their owner's alone: anyone else (admins included) gets 404; a read-only
# token (the requester's) may read them, not change them.
OWNER_READS = _expect(404, requester=200, read_only=200)
WEBHOOK_CELLS: dict[str, tuple[Cell, dict[str, int]]] = {
    "GET webhooks": (lambda a, c, r: c.get(f"{API}/webhooks/"), _expect(200)),
    "POST webhook": (
        lambda a, c, r: c.post(
            f"{API}/webhooks/",
            {"target_url": "https://hooks.example.com/y", "event_types": ["request.submitted"]},
            format="json",
        ),
        _expect(201, read_only=403),
    ),
    "GET webhook": (lambda a, c, r: c.get(f"{API}/webhooks/{_webhook(a)}/"), OWNER_READS),
    "PATCH webhook": (
        lambda a, c, r: c.patch(f"{API}/webhooks/{_webhook(a)}/", {"is_active": False}, format="json"),
        _expect(404, requester=200, read_only=403),
    ),
    "DELETE webhook": (
        lambda a, c, r: c.delete(f"{API}/webhooks/{_webhook(a)}/"),
        _expect(404, requester=204, read_only=403),
    ),
    "POST webhook rotate": (
        lambda a, c, r: c.post(f"{API}/webhooks/{_webhook(a)}/rotate/"),
        _expect(404, requester=200, read_only=403),
    ),
    "GET webhook deliveries": (
        lambda a, c, r: c.get(f"{API}/webhooks/{_webhook(a)}/deliveries/"),
        OWNER_READS,
    ),
    "POST redeliver": (
        lambda a, c, r: c.post(f"{API}/webhooks/deliveries/{_delivery(a, r)}/redeliver/"),
        _expect(404, requester=202, read_only=403),
    ),
}


CELLS: dict[str, tuple[Cell, dict[str, int]]] = {
    "GET request-types": (lambda a, c, r: c.get(f"{API}/request-types/"), _expect(200)),
    "GET requests": (lambda a, c, r: c.get(f"{API}/requests/"), _expect(200)),
    "GET request": (
        lambda a, c, r: c.get(f"{API}/requests/{r.pk}/"),
        _expect(404, **dict.fromkeys(SEES, 200)),
    ),
    "GET wait": (_wait, _expect(404, **dict.fromkeys(SEES, 200))),
    "GET inbox": (lambda a, c, r: c.get(f"{API}/inbox/"), _expect(200)),
    "GET audit entries": (
        lambda a, c, r: c.get(f"{API}/audit/entries/"),
        _expect(403, auditor=200, admin=200),
    ),
    "POST simulate": (
        lambda a, c, r: c.post(f"{API}/request-types/general/simulate/", {"payload": {}}, format="json"),
        _expect(200, read_only=403),
    ),
    "POST create": (
        lambda a, c, r: c.post(f"{API}/requests/", {"type": "general", "title": "New"}, format="json"),
        _expect(400, requester=201, other_requester=201, service=201, admin=201, read_only=403),
    ),
    "POST approve": (
        lambda a, c, r: c.post(f"{API}/requests/{r.pk}/actions/approve/", {}, format="json"),
        _expect(404, approver=200, **dict.fromkeys(SEES - {"approver"}, 403)),
    ),
    "POST withdraw": (
        lambda a, c, r: c.post(f"{API}/requests/{r.pk}/actions/withdraw/", {}, format="json"),
        _expect(404, requester=200, **dict.fromkeys(SEES - {"requester"}, 403)),
    ),
    "POST cancel": (
        lambda a, c, r: c.post(
            f"{API}/requests/{r.pk}/actions/cancel/", {"comment": "Budget frozen"}, format="json"
        ),
        _expect(404, manager=200, admin=200, **dict.fromkeys(SEES - {"manager", "admin"}, 403)),
    ),
    "POST resubmit": (
        lambda a, c, r: c.post(
            f"{API}/requests/{_changes_asked(a, r).pk}/actions/resubmit/", {}, format="json"
        ),
        _expect(404, requester=200, **dict.fromkeys(SEES - {"requester"}, 403)),
    ),
    "POST release": (
        lambda a, c, r: c.post(f"{API}/handoffs/{_claimed(a, r).pk}/release/"),
        # its claimant, or a manager (who may reassign it anyway)
        _expect(
            404,
            approver=200,
            manager=200,
            admin=200,
            **dict.fromkeys(SEES - {"approver", "manager", "admin"}, 403),
        ),
    ),
    "POST claim": (
        lambda a, c, r: c.post(f"{API}/handoffs/{_handoff(r).pk}/claim/"),
        _expect(404, approver=200, **dict.fromkeys(SEES - {"approver"}, 403)),
    ),
    "POST reassign": (
        lambda a, c, r: c.post(
            f"{API}/handoffs/{_handoff(r).pk}/reassign/",
            {"reason": "away", "to_user": "maria"},
            format="json",
        ),
        _expect(404, manager=200, admin=200, **dict.fromkeys(SEES - {"manager", "admin"}, 403)),
    ),
    **WEBHOOK_CELLS,
}


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(api: ApiWorld, role: str) -> None:
    # given a request in review, by the requester, for the reviewers (a fresh one per cell)
    wrong = []
    for name, (call, expected) in CELLS.items():
        req = api.new_request(title=f"{name} for {role}")
        # when `role` calls the endpoint
        response = call(api, _client(api, role), req)
        # then it answers as the table says
        if response.status_code != expected[role]:
            wrong.append(f"{name}: {response.status_code} (expected {expected[role]})")
    assert not wrong, f"{role}: " + "; ".join(wrong)


LIST_SEES = {
    "requester": True,
    "other_requester": False,
    "other_approver": False,
    "approver": True,
    "manager": True,
    "auditor": True,
    "service": False,
    "admin": True,
    "read_only": True,
}


@pytest.mark.parametrize("role", list(LIST_SEES))
def test_lists_never_leak(api: ApiWorld, role: str) -> None:
    # given one request by the requester for the reviewers
    req = api.new_request()
    client = _client(api, role)
    # when `role` lists requests and its inbox
    listed = [r["id"] for r in client.get(f"{API}/requests/").json()["results"]]
    inbox = [r["request"]["id"] for r in client.get(f"{API}/inbox/").json()["results"]]
    # then only those who may see it find it, and only its holder has it in the inbox
    assert listed == ([req.pk] if LIST_SEES[role] else [])
    assert inbox == ([req.pk] if role == "approver" else [])


def test_a_delegate_lists_the_delegators_items_the_delegation_reaches(api: ApiWorld) -> None:
    # given the approver away, their work delegated to a deputy for the 'general' type only
    approver = api.user("approver")
    deputy = UserFactory.create(username="dan")
    delegation_create(
        actor=approver,
        delegator=approver,
        delegate=deputy,
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() + timedelta(days=7),
        scope=["general"],
    )
    # and two requests waiting for the approver's group: one of that type, one of another
    reached = api.new_request(title="Reached")
    other_type = RequestTypeFactory.create(
        slug="travel", name="Travel", approver_group=approver.groups.get(name="reviewers")
    )
    beyond = make_request(requester=api.user("requester"), request_type=other_type, title="Beyond")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(owner=deputy, name='t').secret}")
    # when the deputy lists requests
    listed = [r["id"] for r in client.get(f"{API}/requests/").json()["results"]]
    # then they find what the delegation reaches, and may read it; nothing beyond it
    assert listed == [reached.pk]
    assert client.get(f"{API}/requests/{reached.pk}/").status_code == 200
    assert client.get(f"{API}/requests/{beyond.pk}/").status_code == 404
