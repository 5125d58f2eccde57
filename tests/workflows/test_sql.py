"""The hot path's plain SQL reads and writes rows exactly as the ORM does, on either database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest, Decision, RequestRevision
from tests.factories import make_request
from tests.testapp.models import Ticket
from workflows import sql
from workflows.models import AuditEntry, Handoff, OutboxEvent

pytestmark = pytest.mark.django_db


def test_a_locked_row_reads_as_the_orm_reads_it_with_its_related_rows(requester, request_type):
    # given a submitted request (JSON, dates, foreign keys, a nullable key set)
    request = make_request(requester=requester, request_type=request_type, payload={})
    expected = ApprovalRequest.objects.get(pk=request.pk)

    # when it is locked through the plain SQL, with its type, requester and version joined in
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        locked = sql.row_lock(
            ApprovalRequest, request.pk, related=("request_type", "requester", "policy_version")
        )
        # then its related rows came with it: reading them costs nothing more
        assert locked is not None
        assert (locked.request_type.slug, locked.requester.username) == (
            request_type.slug,
            requester.username,
        )
        assert locked.policy_version is not None
        assert locked.policy_version.pk == expected.policy_version_id
    assert len(captured.captured_queries) == 1
    if connection.features.has_select_for_update:
        assert "FOR UPDATE" in captured.captured_queries[-1]["sql"]

    # and every field holds what the ORM reads, with the same Python types
    for field in ApprovalRequest._meta.concrete_fields:
        mine, theirs = getattr(locked, field.attname), getattr(expected, field.attname)
        assert mine == theirs, field.attname
        assert type(mine) is type(theirs), field.attname
    assert not locked._state.adding


def test_a_row_with_a_null_foreign_key_gets_none_attached(requester, request_type):
    # given a draft (no policy version yet)
    draft = make_request(requester=requester, request_type=request_type, submit=False)

    # when it is locked with its policy version joined in
    with transaction.atomic():
        locked = sql.row_lock(ApprovalRequest, draft.pk, related=("policy_version",))

    # then the version is None without a further query
    assert locked is not None
    with CaptureQueriesContext(connection) as captured:
        assert locked.policy_version is None
    assert captured.captured_queries == []


@pytest.mark.parametrize("key", [10**30, -(10**30), "abc", "", "1; DROP TABLE x"])
def test_a_key_that_cannot_be_one_is_refused_before_any_statement(key):
    # given a key no row could have (out of the column's range, not a number)
    # when it is locked  /  then the caller learns it at once, and no statement ran
    with (
        transaction.atomic(),
        CaptureQueriesContext(connection) as captured,
        pytest.raises((ValueError, TypeError, ValidationError)),
    ):
        sql.row_lock(ApprovalRequest, key)
    assert captured.captured_queries == []


def test_a_key_of_no_row_finds_nothing():
    with transaction.atomic():
        assert sql.row_lock(ApprovalRequest, 987654) is None


def test_a_uuid_keyed_row_is_found_by_its_text_or_its_uuid(ticket):
    # given a ticket keyed by a UUID

    # when it is locked by its UUID and by its text
    with transaction.atomic():
        by_uuid = sql.row_lock(Ticket, ticket.pk)
        by_text = sql.row_lock(Ticket, str(ticket.pk))
        missing = sql.row_lock(Ticket, uuid.uuid4())

    # then both find it, and another UUID finds nothing
    assert by_uuid is not None
    assert by_text is not None
    assert by_uuid.pk == by_text.pk == ticket.pk
    assert isinstance(by_uuid.pk, uuid.UUID)
    assert by_uuid.details == ticket.details
    assert missing is None


def test_inserted_rows_read_back_through_the_orm_as_written(
    approver, approver_group, requester, request_type
):
    # given two handoffs and two outbox events, built in memory (one with a JSON payload)
    request = make_request(requester=requester, request_type=request_type)
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    now = timezone.now()
    handoffs = [
        Handoff(
            content_type=content_type,
            object_id=str(request.pk),
            stage="x",
            slot="s1",
            assignee=approver,
            opened_at=now,
        ),
        Handoff(
            content_type=content_type,
            object_id=str(request.pk),
            stage="x",
            slot="s2",
            candidate_group=approver_group,
            due_at=now + timedelta(hours=4),
            opened_at=now,
        ),
    ]
    events = [
        OutboxEvent(
            kind="channel", destination="g", payload={"n": 1, "text": "é", "nested": {"a": [1, 2.5, None]}}
        ),
        OutboxEvent(kind="task", destination="t", payload={}),
    ]

    # when each set is inserted in one statement
    with CaptureQueriesContext(connection) as captured:
        sql.rows_insert(handoffs)
        sql.rows_insert(events)

    # then that took two statements, the auto keys are set, and the ORM reads back what was written
    assert len(captured.captured_queries) == 2
    assert all(h.pk is not None and not h._state.adding for h in handoffs)
    first, second = (Handoff.objects.get(pk=h.pk) for h in handoffs)
    assert (first.assignee_id, first.candidate_group_id, first.slot) == (approver.pk, None, "s1")
    assert (second.candidate_group_id, second.due_at, second.opened_at) == (
        approver_group.pk,
        handoffs[1].due_at,
        now,
    )
    stored = OutboxEvent.objects.get(pk=events[0].pk)
    assert stored.payload == {"n": 1, "text": "é", "nested": {"a": [1, 2.5, None]}}
    assert (stored.status, stored.attempts) == ("pending", 0)


def test_an_update_writes_the_named_columns_and_auto_now_ones(requester, request_type):
    # given a request, with its title changed in memory
    request = ApprovalRequest.objects.get(pk=make_request(requester=requester, request_type=request_type).pk)
    before = request.updated_at
    request.title = "Another title"
    request.description = "not to be written"

    # when its title and updated_at columns are written
    sql.row_update(request, ["title", "updated_at"])

    # then the title and a fresh updated_at are stored; the description is not
    stored = ApprovalRequest.objects.get(pk=request.pk)
    assert stored.title == "Another title"
    assert stored.updated_at > before
    assert stored.description == ""


def test_a_conditional_update_counts_the_rows_it_changed(requester, request_type):
    # given two pending events and a delivered one
    events = [OutboxEvent(kind="task", destination="t", payload={}) for _ in range(3)]
    sql.rows_insert(events)
    OutboxEvent.objects.filter(pk=events[2].pk).update(status="delivered")

    # when all three are marked delivered unless already finished
    ids, params = sql.in_list(OutboxEvent, "id", [e.pk for e in events])
    changed = sql.rows_update(
        OutboxEvent,
        values={"status": "delivered", "attempts": sql.Raw("attempts + 1")},
        where=f"{ids} AND status NOT IN (%s, %s)",
        params=[*params, "delivered", "dead"],
    )

    # then two rows changed, each attempt counted once
    assert changed == 2
    assert sorted(
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("attempts", flat=True)
    ) == [
        0,
        1,
        1,
    ]


def test_the_writers_send_each_value_as_djangos_own_preparation_does(requester, request_type):
    # given rows of every model the hot path writes, as a transition leaves them
    request = make_request(requester=requester, request_type=request_type, payload={"n": 1})
    rows = [
        ApprovalRequest.objects.get(pk=request.pk),
        *Handoff.objects.all(),
        *AuditEntry.objects.all(),
        *OutboxEvent.objects.all(),
        *Decision.objects.all(),
        *RequestRevision.objects.all(),
    ]
    assert {type(row) for row in rows} >= {ApprovalRequest, Handoff, AuditEntry, OutboxEvent}
    # and values of the types a writer passes through as they are, and of others
    now = timezone.now()
    odd = [None, "text", 7, True, now, uuid.uuid4(), "7", 7.0]
    for row in rows:
        table = sql.table_of(type(row), connection)
        for field in type(row)._meta.concrete_fields:
            prepare = table.prepare[field.attname]
            # when each field's value is prepared by the writers and by Django
            values = [getattr(row, field.attname)]
            values += [v for v in odd if _django_prepares(field, v)]
            for value in values:
                # then both give the same parameter, of the same type
                mine, theirs = prepare(value), field.get_db_prep_save(value, connection)
                assert type(mine) is type(theirs), (field, value)
                assert _comparable(mine) == _comparable(theirs), (field, value)


def _django_prepares(field: Any, value: Any) -> bool:
    try:
        field.get_db_prep_save(value, connection)
    except Exception:  # a value this field refuses: nothing to compare
        return False
    return True


def _comparable(value: Any) -> Any:
    # psycopg's Jsonb wrapper compares by identity: compare what it wraps
    return getattr(value, "obj", value)


def test_picked_columns_read_as_the_orms_only_with_the_rest_deferred(requester, request_type):
    # given a request
    request = make_request(requester=requester, request_type=request_type, payload={"amount": 5})
    expected = ApprovalRequest.objects.only("title", "created_at", "requester").get(pk=request.pk)
    picked = sql.picked(ApprovalRequest, connection, only=("title", "created_at", "requester"))

    # when those columns are read and built
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {picked.columns('r')} FROM approvals_approvalrequest r WHERE r.id = %s",
            [request.pk],
        )
        built = picked.build(cursor.fetchone(), connection)

    # then they hold what the ORM reads, typed alike, and the rest is deferred as .only() leaves it
    for name in ("id", "title", "created_at", "requester_id"):
        assert getattr(built, name) == getattr(expected, name), name
        assert type(getattr(built, name)) is type(getattr(expected, name)), name
    assert built.get_deferred_fields() == expected.get_deferred_fields()
    assert "payload" in built.get_deferred_fields()
    assert not built._state.adding


def test_picking_a_column_a_model_lacks_is_refused():
    with pytest.raises(AssertionError, match="no columns"):
        sql.picked(ApprovalRequest, connection, only=("title", "nope"))
