"""The lists' plain statements (approvals.selectors.list_sql) read what the ORM reads."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from accounts.models import Delegation
from approvals.models import ApprovalRequest, Notification
from approvals.selectors import list_sql
from tests.approvals.policy_world import PolicyWorld, load_demo_world
from tests.factories import UserFactory
from workflows.models import Handoff
from workflows.services import handoff_claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> PolicyWorld:
    return load_demo_world()


def test_a_page_row_holds_what_the_orm_reads_of_its_handoff_request_and_people(world):
    # given an open handoff, claimed, with a due date, of a submitted request
    request = world.submit("content", title="Train to Lyon")
    handoff = Handoff.objects.for_instance(request).open().get()
    Handoff.objects.filter(pk=handoff.pk).update(due_at=timezone.now() + timedelta(days=1, microseconds=7))
    handoff_claim(handoff_id=handoff.pk, actor=world["alex"])

    # when the page's statement reads it
    (row,) = list_sql.page_rows(
        list_sql.open_request_handoffs().add("h.id = %s", handoff.pk), sort="due", limit=5
    )

    # then every column it shows is what the ORM reads, dates aware in UTC to the microsecond
    expected = Handoff.objects.select_related("assignee", "candidate_group").get(pk=handoff.pk)
    for name in (
        "due_at",
        "opened_at",
        "claimed_at",
        "stage",
        "object_id",
        "assignee_id",
        "candidate_group_id",
    ):
        assert getattr(row.handoff, name) == getattr(expected, name), name
    assert row.handoff.due_at.utcoffset() == timedelta(0)
    assert row.handoff.due_at.tzinfo == UTC or str(row.handoff.due_at.tzinfo) == "UTC"
    assert row.handoff.holder_label() == expected.holder_label()
    stored = ApprovalRequest.objects.select_related("requester", "request_type").get(pk=request.pk)
    assert row.request is not None
    for name in ("title", "state", "version", "created_at", "updated_at", "expires_at"):
        assert getattr(row.request, name) == getattr(stored, name), name
    assert row.request.requester.display_name == stored.requester.display_name
    assert str(row.request.request_type) == str(stored.request_type)
    # and what it does not show is left to be read on demand, as .only() leaves it
    assert "payload" in row.request.get_deferred_fields()
    assert row.request.payload == stored.payload


def test_the_delegations_read_for_the_inbox_are_those_the_model_calls_active():
    # given delegations to one person: open-ended, ended, to come, revoked, from an inactive
    # person, with and without a scope (and one to someone else)
    now = timezone.now()
    hour = timedelta(hours=1)
    delegate = UserFactory()
    cases = {
        "open": {"starts_at": now - hour, "ends_at": None, "scope": []},
        "until later": {"starts_at": now - hour, "ends_at": now + hour, "scope": ["expense"]},
        "ended": {"starts_at": now - 2 * hour, "ends_at": now - hour},
        "to come": {"starts_at": now + hour, "ends_at": None},
        "revoked": {"starts_at": now - hour, "revoked_at": now - hour / 2},
        "inactive delegator": {"starts_at": now - hour},
    }
    made = {}
    for name, fields in cases.items():
        delegator = UserFactory(is_active=name != "inactive delegator")
        made[name] = Delegation.objects.create(delegator=delegator, delegate=delegate, **fields)
    Delegation.objects.create(delegator=UserFactory(), delegate=UserFactory(), starts_at=now - hour)

    # when the inbox reads them in plain SQL
    found = list_sql.delegations_to(delegate.pk, now=now)

    # then they are the model's active ones from active people, with their scopes
    expected = (
        Delegation.objects.active(now).filter(delegate=delegate, delegator__is_active=True).order_by("pk")
    )
    assert [(d.pk, d.username) for d, _ in found] == [
        (e.delegator_id, e.delegator.username) for e in expected
    ]
    assert sorted(d.pk for d, _ in found) == sorted(
        [made["open"].delegator_id, made["until later"].delegator_id]
    )
    assert {d.pk: s for d, s in found} == {
        made["open"].delegator_id: [],
        made["until later"].delegator_id: ["expense"],
    }


def test_the_unread_count_is_the_recipients_unread_notifications(world):
    # given three notifications of alex's, one read, and one of someone else's
    request = world.submit("content")
    alex = world["alex"]
    for n, (recipient, read_at) in enumerate(
        [(alex, None), (alex, None), (alex, timezone.now()), (world["maria"], None)]
    ):
        Notification.objects.create(recipient=recipient, request=request, event_id=f"e{n}", read_at=read_at)
    unread = Notification.objects.filter(recipient=alex, read_at__isnull=True)
    assert unread.count() >= 2
    # when counted in plain SQL  /  then as the ORM counts them
    assert list_sql.unread_notifications(alex.pk) == unread.count()
