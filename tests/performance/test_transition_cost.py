"""What one transition costs in SQL, and that the cheaper paths behave as before.

bench/transitions measures the throughput; these tests pin the savings it relies on
(one read of the open handoffs, a row UPDATE of the changed columns only, a push that
marks its events delivered by primary key in one UPDATE, without reading them back)
and check that each saving kept its behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.factories import GroupFactory, make_request
from workflows.definition import action_allowed
from workflows.models import OutboxEvent
from workflows.outbox import RelayResult, outbox_relay_once
from workflows.permissions import user_group_ids
from workflows.services import field_values as _field_values
from workflows.services import fields_to_save as _fields_to_save

pytestmark = pytest.mark.django_db

# A Redis nobody listens on: channel sends fail at once, as when Redis is down.
UNREACHABLE_CHANNEL_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
    }
}


def statements(captured: CaptureQueriesContext, table: str) -> list[str]:
    return [part for q in captured.captured_queries for part in parts(q["sql"]) if f'"{table}"' in part]


def parts(sql: str) -> list[str]:
    """A statement of several writes (workflows.sql.Writes on PostgreSQL:
    `WITH w0 AS (...), w1 AS (...) SELECT ...`) as the statements it is made of."""
    head = "WITH w0 AS ("
    if not sql.startswith(head):
        return [sql]
    body = sql[len(head) : sql.rindex(") SELECT ")]
    return re.split(r"\), w\d+ AS \(", body)


def verbs(sql: list[str]) -> list[str]:
    return [s.split(None, 1)[0].upper() for s in sql]


def test_a_decision_reads_the_open_handoffs_of_the_request_once(
    requester, approver, request_type, django_capture_on_commit_callbacks
):
    # given a request in review
    request = make_request(requester=requester, request_type=request_type)

    # when its approver asks for changes (the permission check and the service both need
    # to know who holds it)
    with CaptureQueriesContext(connection) as captured:
        request_act(request_id=request.pk, action="request_changes", actor=approver, comment="a quote")

    # then the handoffs were read once, the one open handoff was closed and the request
    # was handed back to its requester
    list_sql = statements(captured, "workflows_handoff")
    assert verbs(list_sql) == ["SELECT", "UPDATE", "INSERT"], list_sql


def test_the_instance_a_transition_returns_answers_permission_checks_afresh(
    requester, approver, request_type
):
    # given a request in review, which its approver may decide
    request = make_request(requester=requester, request_type=request_type)
    assert action_allowed(instance=request, name="approve", user=approver)

    # when the approver asks for changes
    result = request_act(request_id=request.pk, action="request_changes", actor=approver, comment="a quote")

    # then the returned instance no longer offers a decision: no stale list of the
    # handoffs the check saw during the transition is left on it
    assert not action_allowed(instance=result.instance, name="approve", user=approver)
    # and once resubmitted, the review handoff it reopened counts again
    again = request_act(request_id=request.pk, action="resubmit", actor=requester)
    assert action_allowed(instance=again.instance, name="approve", user=approver)


def test_a_transition_updates_only_the_columns_it_changed(requester, approver, request_type):
    # given a request whose approver asked for changes
    request = make_request(requester=requester, request_type=request_type, title="Buy a desk")
    request_act(request_id=request.pk, action="request_changes", actor=approver, comment="which desk?")
    before = ApprovalRequest.objects.get(pk=request.pk)

    # when the requester resubmits it with a new title
    with CaptureQueriesContext(connection) as captured:
        result = request_act(
            request_id=request.pk, action="resubmit", actor=requester, data={"title": "Buy a standing desk"}
        )

    # then one UPDATE wrote the row: what the transition changed, not the untouched columns
    (update,) = [s for s in statements(captured, "approvals_approvalrequest") if s.startswith("UPDATE")]
    written = update.split(" WHERE ")[0]
    for column in ("state", "version", "audit_seq", "audit_head", "updated_at", "title", "submitted_at"):
        assert f'"{column}"' in written, column
    for column in ("requester_id", "request_type_id", "description", "created_at", "decided_at"):
        assert f'"{column}"' not in written, column
    # and the row reads back as the service left the instance
    after = ApprovalRequest.objects.get(pk=request.pk)
    assert (after.state, after.title, after.version) == (
        "in_review",
        "Buy a standing desk",
        before.version + 1,
    )
    assert (after.audit_seq, after.audit_head) == (result.entry.seq, result.entry.hash)
    assert after.submitted_at == result.instance.submitted_at > before.submitted_at
    assert after.updated_at == result.instance.updated_at > before.updated_at
    assert (after.requester_id, after.description, after.created_at) == (
        before.requester_id,
        before.description,
        before.created_at,
    )


def test_fields_holding_a_dict_or_list_are_always_written(requester, request_type):
    # given a request as loaded from the database
    request = ApprovalRequest.objects.get(pk=make_request(requester=requester, request_type=request_type).pk)
    loaded = _field_values(request)

    # when its JSON payload is changed in place (the loaded snapshot holds the same dict)
    request.payload["amount"] = 12

    # then the payload is among the columns to write, with auto_now ones; untouched columns are not
    fields = _fields_to_save(request, loaded)
    assert "payload" in fields
    assert "updated_at" in fields
    assert "title" not in fields
    assert "state" not in fields


def test_a_push_marks_its_events_delivered_in_one_plain_update_without_reading_them(
    requester, approver, request_type, memory_broker, django_capture_on_commit_callbacks
):
    # given a request in review
    request = make_request(requester=requester, request_type=request_type)

    # when its approver asks for changes and the transaction commits
    with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks(execute=True):
        result = request_act(request_id=request.pk, action="request_changes", actor=approver, comment="why?")

    # then the outbox saw one insert and one update, whatever the number of events: the
    # push works from the rows it wrote, without reading them back or locking them
    outbox_sql = statements(captured, "workflows_outboxevent")
    assert verbs(outbox_sql) == ["INSERT", "UPDATE"], outbox_sql
    mark = outbox_sql[1]
    # and marking them delivered is one plain UPDATE by key, not a CASE per row and column
    assert " CASE " not in mark, mark
    assert '"id" IN (' in mark.split(" WHERE ", 1)[1], mark
    events = OutboxEvent.objects.filter(payload__audit_seq=result.entry.seq) | OutboxEvent.objects.filter(
        payload__kwargs__audit_seq=result.entry.seq, payload__kwargs__request_id=request.pk
    )
    assert events.count() == 4
    assert set(events.values_list("status", "attempts")) == {(OutboxEvent.Status.DELIVERED, 1)}
    assert None not in events.values_list("delivered_at", flat=True)


def _decision_whose_push_is_late(
    request: ApprovalRequest, approver: Any, django_capture_on_commit_callbacks: Any
) -> tuple[Callable[[], Any], list[Any]]:
    """A decision committed, its push held back until the lease ran out and a relay had
    delivered its events; returns the push (to run late) and the events' ids."""
    OutboxEvent.objects.update(status=OutboxEvent.Status.DELIVERED)  # what creating it wrote
    with django_capture_on_commit_callbacks() as callbacks:
        request_act(request_id=request.pk, action="request_changes", actor=approver, comment="why?")
    (push,) = callbacks
    ids = list(OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).values_list("id", flat=True))
    assert len(ids) == 5  # the step's four, and its webhook fan-out task
    OutboxEvent.objects.filter(id__in=ids).update(available_at=timezone.now() - timedelta(seconds=1))
    assert outbox_relay_once().delivered == 5
    return push, ids


def _rows(ids: list[Any]) -> dict[Any, tuple[Any, ...]]:
    fields = ("status", "attempts", "delivered_at", "available_at", "last_error")
    return {row[0]: row[1:] for row in OutboxEvent.objects.filter(id__in=ids).values_list("id", *fields)}


def test_a_late_push_leaves_alone_the_events_a_relay_delivered_first(
    requester, approver, request_type, memory_broker, django_capture_on_commit_callbacks
):
    # given a decision whose after-commit push is so late that its lease ran out, and a
    # relay that delivered its events meanwhile
    request = make_request(requester=requester, request_type=request_type)
    push, ids = _decision_whose_push_is_late(request, approver, django_capture_on_commit_callbacks)
    relayed = _rows(ids)

    # when the push finally runs (sending the events again: delivery is at least once)
    pushed = push()

    # then it records nothing: status, attempts and delivery time are the relay's
    assert pushed == RelayResult()
    assert _rows(ids) == relayed
    assert {row[:2] for row in relayed.values()} == {(OutboxEvent.Status.DELIVERED, 1)}


def test_a_late_push_that_fails_leaves_alone_the_events_a_relay_delivered_first(
    settings, requester, approver, request_type, memory_broker, django_capture_on_commit_callbacks
):
    # given a decision whose push is late, its events delivered by a relay meanwhile
    request = make_request(requester=requester, request_type=request_type)
    push, ids = _decision_whose_push_is_late(request, approver, django_capture_on_commit_callbacks)
    relayed = _rows(ids)

    # when the push finally runs and its channel layer is down
    settings.CHANNEL_LAYERS = UNREACHABLE_CHANNEL_LAYER
    pushed = push()

    # then its failures change none of the rows the relay delivered
    assert pushed.delivered == 0
    assert _rows(ids) == relayed


BACKLOG_SQL = """
    INSERT INTO workflows_outboxevent
        (id, kind, destination, payload, status, attempts, available_at, created_at, delivered_at, last_error)
    SELECT gen_random_uuid(), 'task', 'approvals.notify_transition', '{}', %s, 1, now(), now(),
        CASE WHEN %s = 'delivered' THEN now() END, ''
    FROM generate_series(1, %s)
"""


@pytest.mark.integration
def test_a_push_finds_its_rows_by_key_alone_whatever_the_backlog(
    requester, approver, request_type, memory_broker, django_capture_on_commit_callbacks
):
    # given an outbox whose statistics were taken while next to nothing was pending, and a
    # backlog of pending events grown since (an outage, faster than autovacuum analyzes)
    with connection.cursor() as cursor:
        cursor.execute(BACKLOG_SQL, ["delivered", "delivered", 20_000])
        cursor.execute("ANALYZE workflows_outboxevent")
        cursor.execute(BACKLOG_SQL, ["pending", "pending", 20_000])
    request = make_request(requester=requester, request_type=request_type)

    # when a decision commits and its push marks its events delivered
    with django_capture_on_commit_callbacks() as callbacks:
        request_act(request_id=request.pk, action="request_changes", actor=approver, comment="why?")
    (push,) = callbacks
    with CaptureQueriesContext(connection) as captured:
        assert push().delivered == 5  # the step's four events and its webhook fan-out
    (mark,) = [q["sql"] for q in captured.captured_queries]

    # then PostgreSQL finds those rows by primary key alone, never reading the backlog's index
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {mark}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "outbox_pending" not in plan, plan
    assert "workflows_outboxevent_pkey" in plan, plan


def test_permissions_and_group_ids_come_in_one_query_also_for_a_lazy_request_user(approver, approver_group):
    # given an approver in two groups, as a view sees them: request.user, a lazy object
    other = GroupFactory.create(name="other")
    approver.groups.add(other)
    fresh = User.objects.get(pk=approver.pk)
    lazy = SimpleLazyObject(lambda: fresh)

    # when their group ids and a role permission are asked for
    with CaptureQueriesContext(connection) as captured:
        ids = user_group_ids(lazy)
        may_decide = lazy.has_perm("approvals.decide_approvalrequest")

    # then they are all their groups, and their role's permission, read in one query
    assert approver_group.pk in ids
    assert other.pk in ids
    assert ids == set(approver.groups.values_list("id", flat=True))
    assert may_decide
    assert len(captured.captured_queries) == 1, [q["sql"] for q in captured.captured_queries]
