"""Fixtures of the engine tests: requests in each state, a UUID-keyed ticket, a broker to read."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from accounts.models import User
from accounts.roles import APPROVERS, REQUESTERS
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act
from config.celery import app as celery_app
from tests.factories import GroupFactory, UserFactory, make_approver, make_request
from tests.testapp.models import Ticket
from tests.workflows.support import broker_messages, broker_use
from workflows.services import instance_create


@pytest.fixture
def submitted(requester: User, request_type: RequestType) -> ApprovalRequest:
    """A request in review, offered to the reviewers group."""
    return make_request(requester=requester, request_type=request_type)


@pytest.fixture
def approved(submitted: ApprovalRequest, approver: User) -> ApprovalRequest:
    return request_act(request_id=submitted.pk, action="approve", actor=approver, comment="fine").instance


@pytest.fixture
def changes_requested(submitted: ApprovalRequest, approver: User) -> ApprovalRequest:
    return request_act(
        request_id=submitted.pk, action="request_changes", actor=approver, comment="add a quote"
    ).instance


@pytest.fixture
def foreign_approver() -> User:
    """An approver, but of another group: holds nothing of the reviewers' requests."""
    return make_approver(GroupFactory.create(name="legal"), username="lena")


@pytest.fixture
def requesting_approver(approver_group: Group) -> User:
    """A reviewer who also submits requests of the type they review."""
    return UserFactory.create(username="ray", roles=[REQUESTERS, APPROVERS], member_of=[approver_group])


# --- the UUID-keyed test workflow ---------------------------------------------------------


@pytest.fixture
def team() -> Group:
    return GroupFactory.create(name="support")


@pytest.fixture
def reporter(team: Group) -> User:
    """Reports tickets and is a member of the team too (so that holder rules matter)."""
    return UserFactory.create(username="rob", member_of=[team])


@pytest.fixture
def worker(team: Group) -> User:
    return UserFactory.create(username="wendy", member_of=[team])


@pytest.fixture
def second_worker(team: Group) -> User:
    return UserFactory.create(username="will", member_of=[team])


@pytest.fixture
def ticket(reporter: User, team: Group) -> Ticket:
    return instance_create(
        instance=Ticket(title="Printer on fire", reporter=reporter, team=team), actor=reporter
    )


# --- the broker and the process ------------------------------------------------------------


@pytest.fixture
def celery_broker() -> Iterator[None]:
    """Task events go to a broker the test can read: the run's Redis when REDIS_URL is set,
    else kombu's in-memory transport (never the shared filesystem broker in var/)."""
    original = (celery_app.conf.broker_url, dict(celery_app.conf.broker_transport_options or {}))
    broker_use(settings.REDIS_URL or "memory://", {})
    broker_messages()  # start from an empty queue
    yield
    broker_messages()
    broker_use(*original)


@pytest.fixture
def signal_handlers_kept() -> Iterator[None]:
    """`manage.py outbox_relay` installs SIGTERM/SIGINT handlers; give pytest its own back."""
    saved: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
