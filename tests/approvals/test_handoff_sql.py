"""The lists' plain statements (approvals.selectors.handoff_sql) read what the ORM reads."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import handoff_sql
from tests.approvals.policy_world import PolicyWorld, load_demo_world
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
    (row,) = handoff_sql.page_rows(
        handoff_sql.open_request_handoffs().add("h.id = %s", handoff.pk), sort="due", limit=5
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
