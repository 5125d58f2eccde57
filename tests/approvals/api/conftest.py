"""The API's world: people of every role, their API tokens, and clients holding them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from accounts.roles import APPROVERS, AUDITORS, MANAGERS, REQUESTERS, roles_sync
from accounts.tokens import api_token_create
from approvals.models import ApprovalRequest, RequestType
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, make_request

API = "/api/v1"


@dataclass
class ApiWorld:
    request_type: RequestType
    people: dict[str, User]
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, ApiToken] = field(default_factory=dict)

    def user(self, role: str) -> User:
        return self.people[role]

    def token_for(self, role: str, *, read_only: bool = False, name: str = "") -> str:
        issued = api_token_create(owner=self.user(role), name=name or f"{role} token", read_only=read_only)
        self.tokens[role] = issued.token
        return issued.secret

    def client(self, role: str | None, **token_options: Any) -> APIClient:
        """A client with a Bearer token of `role` (None: anonymous)."""
        client = APIClient()
        if role is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token_for(role, **token_options)}")
        return client

    def new_request(
        self, *, submit: bool = True, title: str = "Buy a desk", role: str = "requester"
    ) -> ApprovalRequest:
        return make_request(
            requester=self.user(role), request_type=self.request_type, submit=submit, title=title
        )


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    # The throttle counts in the cache; each test starts with a full budget.
    cache.clear()


@pytest.fixture
def api() -> ApiWorld:
    roles = roles_sync()
    reviewers, finance = GroupFactory.create(name="reviewers"), GroupFactory.create(name="finance")
    request_type = RequestTypeFactory.create(
        slug="general",
        name="General",
        approver_group=reviewers,
        open_to_requesters=False,
        payload_schema={
            "type": "object",
            "properties": {"amount": {"type": "integer", "minimum": 0}},
        },
    )
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)

    def person(username: str, *groups: Group, **extra: Any) -> User:
        return UserFactory.create(username=username, member_of=list(groups), **extra)

    service = person("deploybot", roles[REQUESTERS], is_service_account=True)
    people = {
        "requester": person("rita", roles[REQUESTERS]),
        "other_requester": person("oscar", roles[REQUESTERS]),
        "approver": person("alex", roles[APPROVERS], reviewers),
        "other_approver": person("fiona", roles[APPROVERS], finance),
        "manager": person("maria", roles[MANAGERS]),
        "auditor": person("audrey", roles[AUDITORS]),
        "admin": person("root", is_superuser=True, is_staff=True),
        "service": service,
    }
    return ApiWorld(request_type=request_type, people=people)


def expired_token_secret(world: ApiWorld, role: str) -> str:
    issued = api_token_create(
        owner=world.user(role), name="old", expires_at=timezone.now() + timedelta(seconds=5)
    )
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return issued.secret
