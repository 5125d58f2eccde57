"""Fixtures of the page tests: one person per role, requests in each state, logged-in clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import ClientHandler
from guardian.shortcuts import assign_perm

from accounts.models import Team, TeamMembership, User
from accounts.roles import APPROVERS, AUDITORS, MANAGERS, REQUESTERS, ROLE_PERMISSIONS, roles_sync
from approvals.discussion import request_comment
from approvals.models import ApprovalRequest, Attachment, RequestType
from approvals.services import request_act
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, make_request
from workflows.models import Handoff
from workflows.services import handoff_claim

# Every role the pages serve, in the column order of the status tables.
ROLES = ("anonymous", "requester", "approver", "other_approver", "manager", "auditor", "admin", "outsider")

# Building a handler loads the middleware, and WhiteNoise's scans every static file
# (~60 ms). One handler serves every client here, as one server serves every browser.
_HANDLER = ClientHandler(enforce_csrf_checks=False)


class BrowserClient(Client):
    """A test client that, like a browser, follows a refused post's 303 back to its page
    (approvals.views.refusals): the answer is that page, with the refusal's status, errors
    and context. Success redirects (302) are left to the test. The 303 itself is kept on
    the answer as `refused_post` (tests/approvals/test_post_redirect_get.py checks it)."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        response = super().post(*args, **kwargs)
        if response.status_code != 303 or kwargs.get("follow"):
            return response
        page = self.get(response["Location"])
        page.refused_post = response  # type: ignore[attr-defined]  # (an extra for the tests)
        return page


def client_for(user: User | None) -> Client:
    client = BrowserClient()
    client.handler = _HANDLER
    if user is not None:
        client.force_login(user)
    return client


def role_groups() -> dict[str, Group]:
    """The role groups migrate made (roles_sync runs after migrate); made again if missing."""
    found = {g.name: g for g in Group.objects.filter(name__in=ROLE_PERMISSIONS)}
    return found if len(found) == len(ROLE_PERMISSIONS) else roles_sync()


@dataclass
class World:
    """The people of every role and, made on first use, a request in each state they need.

    `approver` reviews the request type; `other_approver` reviews another group's type;
    `manager` manages a team of which `approver` is a member.
    """

    request_type: RequestType
    people: dict[str, User | None]
    clients: dict[str, Client] = field(default_factory=dict)

    def user(self, role: str) -> User:
        person = self.people[role]
        assert person is not None, f"{role} is nobody"
        return person

    def client(self, role: str) -> Client:
        if role not in self.clients:
            self.clients[role] = client_for(self.people[role])
        return self.clients[role]

    def new_request(self, *, submit: bool = True, title: str = "Buy a desk") -> ApprovalRequest:
        return make_request(
            requester=self.user("requester"), request_type=self.request_type, submit=submit, title=title
        )

    @cached_property
    def in_review(self) -> ApprovalRequest:
        return self.new_request()

    @cached_property
    def draft(self) -> ApprovalRequest:
        return self.new_request(submit=False, title="A draft")

    @cached_property
    def changes_requested(self) -> ApprovalRequest:
        req = self.new_request(title="Needs work")
        return request_act(
            request_id=req.pk, action="request_changes", actor=self.user("approver"), comment="Add a quote"
        ).instance

    @cached_property
    def claimed_handoff(self) -> Handoff:
        """The open review handoff of a fresh request, claimed by the approver."""
        req = self.new_request(title="Claimed one")
        handoff = Handoff.objects.for_instance(req).open().get()
        return handoff_claim(handoff_id=handoff.pk, actor=self.user("approver"))

    @cached_property
    def attachment(self) -> Attachment:
        """A file the requester added to the request in review."""
        upload = SimpleUploadedFile("quote.txt", b"Desk: 240 EUR\n", content_type="text/plain")
        request_comment(request_id=self.in_review.pk, author=self.user("requester"), files=[upload])
        return Attachment.objects.get(request=self.in_review)

    def open_handoff(self, req: ApprovalRequest) -> Handoff:
        return Handoff.objects.for_instance(req).open().get()


@pytest.fixture
def world() -> World:
    # The factories' `roles=` runs roles_sync once per person, which made this fixture the
    # slowest part of 150+ tests; `member_of` adds the same groups.
    roles = role_groups()
    reviewers, finance = GroupFactory.create(name="reviewers"), GroupFactory.create(name="finance")
    request_type = RequestTypeFactory.create(
        slug="general", name="General", approver_group=reviewers, open_to_requesters=False
    )
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)

    def person(username: str, first: str, *groups: Group, **extra: bool) -> User:
        return UserFactory.create(
            username=username, first_name=first, last_name="", member_of=list(groups), **extra
        )

    people: dict[str, User | None] = {
        "anonymous": None,
        "requester": person("rita", "Rita", roles[REQUESTERS]),
        "approver": person("alex", "Alex", roles[APPROVERS], reviewers),
        "other_approver": person("fiona", "Fiona", roles[APPROVERS], finance),
        "manager": person("maria", "Maria", roles[MANAGERS]),
        "auditor": person("audrey", "Audrey", roles[AUDITORS]),
        "admin": person("ada", "Ada", is_staff=True, is_superuser=True),
        "outsider": person("olaf", "Olaf"),
    }
    # Maria manages the operations team, of which Alex is a member.
    team = Team.objects.create(name="Operations", slug="operations")
    world = World(request_type=request_type, people=people)
    TeamMembership.objects.create(team=team, user=world.user("manager"), is_manager=True)
    TeamMembership.objects.create(team=team, user=world.user("approver"))
    return world


@pytest.fixture
def client_as(world: World) -> Callable[[str], Client]:
    return world.client
