"""Statements of many parameters go out with `$n` placeholders, rewritten once
(workflows.sql.numbered), and leave the rows the `%s` form leaves."""

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
from workflows.sql.numbered import CACHED_BY_PSYCOPG, numbered

ON_POSTGRESQL = connection.vendor == "postgresql"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("SELECT %s, %s", "SELECT $1, $2"),
        ("SELECT '100%%', %s", "SELECT '100%', $1"),
        ("SELECT %s WHERE a LIKE 'x%%'", "SELECT $1 WHERE a LIKE 'x%'"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_placeholders_are_numbered_in_order_and_doubled_percents_undone(given, expected):
    assert numbered(given) == expected


@pytest.mark.parametrize(
    "given", ["SELECT %(name)s", "SELECT %d", "SELECT $1, %s", "SELECT 5 %", "SELECT %%%"]
)
def test_what_cannot_be_rewritten_safely_is_left_to_psycopg(given):
    assert numbered(given) is None


def _many_events(count: int) -> list[OutboxEvent]:
    return [OutboxEvent(kind="task", destination=f"d{n}", payload={"n": n}) for n in range(count)]


def _sent(run: sql.Writes) -> list[tuple[str, int]]:
    """Each statement `run` sent, as the execute wrappers saw it: its text, its parameters."""
    seen: list[tuple[str, int]] = []

    def wrapper(execute, statement, params, many, context):
        seen.append((statement, len(params or ())))
        return execute(statement, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(wrapper):
        run.run()
    return seen


@pytest.mark.django_db
def test_a_run_of_many_parameters_goes_numbered_and_writes_the_same_rows(approver, requester, request_type):
    # given a request, its open handoff, and a run of writes of more parameters than
    # psycopg caches its own rewrite for
    request = make_request(requester=requester, request_type=request_type)
    (held,) = Handoff.objects.filter(object_id=str(request.pk), closed_at__isnull=True)
    now = timezone.now()
    opened = Handoff(
        content_type=ContentType.objects.get_for_model(ApprovalRequest),
        object_id=str(request.pk),
        stage="x",
        slot="a",
        opened_at=now,
        assignee=approver,
    )
    events = _many_events(12)
    writes = sql.Writes()
    writes.update_where(
        Handoff, values={"closed_at": now, "close_reason": "done"}, where="id = %s", params=[held.pk]
    )
    writes.insert([opened])
    writes.insert(events)

    # when it is sent
    seen = _sent(writes)

    # then PostgreSQL got it as one statement with $n placeholders (elsewhere: one each, as %s)
    if ON_POSTGRESQL:
        ((statement, params),) = seen
        assert params > CACHED_BY_PSYCOPG
        assert "$1" in statement
        assert "%s" not in statement
    else:
        assert all("$1" not in statement for statement, _ in seen)
    # and every row is as written, the inserted ones with their keys, in order
    assert Handoff.objects.get(pk=held.pk).closed_at == now
    assert Handoff.objects.get(pk=opened.pk).slot == "a"
    stored = OutboxEvent.objects.in_bulk([e.pk for e in events])
    assert [stored[e.pk].destination for e in events] == [f"d{n}" for n in range(12)]
    assert [stored[e.pk].payload for e in events] == [{"n": n} for n in range(12)]


@pytest.mark.django_db
def test_a_run_of_few_parameters_is_left_to_psycopgs_own_cache():
    # given a run under psycopg's cached size
    writes = sql.Writes()
    writes.insert(_many_events(2))

    # when it is sent, then it goes as written
    ((statement, params),) = _sent(writes)
    assert params <= CACHED_BY_PSYCOPG
    assert "$1" not in statement


@pytest.mark.django_db
def test_while_statements_are_logged_the_run_goes_as_written_and_is_logged_with_its_values():
    # given a run of many parameters, and Django logging statements (DEBUG or a test
    # counting them), which renders each with its values client-side
    writes = sql.Writes()
    events = _many_events(12)
    writes.insert(events)

    # when it is sent
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        writes.run()

    # then the log holds it with its values, and the rows were written
    logged = [q["sql"] for q in captured.captured_queries if "workflows_outboxevent" in q["sql"]]
    assert logged
    assert all("$1" not in q and "%s" not in q for q in logged)
    assert "'d11'" in logged[-1]
    assert OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).count() == 12
