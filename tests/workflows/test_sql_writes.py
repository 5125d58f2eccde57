"""Several writes sent together (`sql.Writes`): one statement on PostgreSQL, cut where one
write must see another's result; the rows are those the writes one by one would leave."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest
from tests.factories import make_request
from workflows import sql
from workflows.models import Handoff, OutboxEvent

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = connection.vendor == "postgresql"


def _handoff(request: ApprovalRequest, slot: str, **fields: object) -> Handoff:
    return Handoff(
        content_type=ContentType.objects.get_for_model(ApprovalRequest),
        object_id=str(request.pk),
        stage="x",
        slot=slot,
        opened_at=timezone.now(),
        **fields,
    )


def _statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].upper() not in {"BEGIN", "COMMIT"}]


def test_inserts_and_updates_of_different_tables_go_as_one_statement(approver, requester, request_type):
    # given a request with its open handoff, and new rows of two tables
    request = make_request(requester=requester, request_type=request_type)
    (held,) = Handoff.objects.filter(object_id=str(request.pk), closed_at__isnull=True)
    now = timezone.now()
    opened = [_handoff(request, "a", assignee=approver), _handoff(request, "b", assignee=requester)]
    events = [OutboxEvent(kind="task", destination="t", payload={"n": n}) for n in range(2)]
    request.title = "Renamed"

    # when the old handoff is closed, two opened, the request renamed and events written
    writes = sql.Writes()
    writes.update_where(
        Handoff, values={"closed_at": now, "close_reason": "done"}, where="id = %s", params=[held.pk]
    )
    writes.insert(opened)
    writes.update(request, ["title"])
    writes.insert(events)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        writes.run()

    # then PostgreSQL got one statement, anything else one each
    assert len(_statements(captured)) == (1 if ON_POSTGRESQL else 4)
    # and every row is as written, the new handoffs with their keys in order
    assert Handoff.objects.get(pk=held.pk).closed_at == now
    assert [Handoff.objects.get(pk=h.pk).slot for h in opened] == ["a", "b"]
    assert opened[0].pk < opened[1].pk
    assert not any(h._state.adding for h in [*opened, *events])
    assert ApprovalRequest.objects.get(pk=request.pk).title == "Renamed"
    assert sorted(e.payload["n"] for e in OutboxEvent.objects.filter(pk__in=[e.pk for e in events])) == [0, 1]


def test_an_update_of_a_table_the_run_writes_waits_for_it(approver, requester, request_type):
    # given a request, and a handoff about to be inserted
    request = make_request(requester=requester, request_type=request_type)
    fresh = _handoff(request, "fresh", assignee=approver)

    # when the same writes insert it and then close every handoff of the request
    writes = sql.Writes()
    writes.insert([fresh])
    writes.update_where(
        Handoff,
        values={"closed_at": timezone.now(), "close_reason": "superseded"},
        where="object_id = %s AND closed_at IS NULL",
        params=[str(request.pk)],
    )
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        writes.run()

    # then the update saw the row inserted before it (two statements, not one snapshot)
    assert len(_statements(captured)) == 2
    assert not Handoff.objects.filter(object_id=str(request.pk), closed_at__isnull=True).exists()
    assert Handoff.objects.get(pk=fresh.pk).close_reason == "superseded"


def test_a_row_whose_key_points_at_a_row_of_the_same_run_waits_for_that_key(
    approver, requester, request_type
):
    # given two new handoffs, the second replacing the first (a key not known yet)
    request = make_request(requester=requester, request_type=request_type)
    first = _handoff(request, "first", assignee=approver)
    second = _handoff(request, "second", assignee=requester, replaced_by=first)

    # when both are inserted by the same writes
    writes = sql.Writes()
    writes.insert([first])
    writes.insert([second])
    with transaction.atomic():
        writes.run()

    # then the second points at the first's key
    assert Handoff.objects.get(pk=second.pk).replaced_by_id == first.pk
