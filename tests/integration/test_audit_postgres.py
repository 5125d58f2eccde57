"""The audit trail on PostgreSQL: the append-only trigger, and tamper detection past it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from approvals.services import request_act
from tests.factories import make_request
from workflows.audit import audit_verify
from workflows.models import AuditEntry

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TABLE = AuditEntry._meta.db_table


def _rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE} ORDER BY id")
        return cursor.fetchall()


@pytest.mark.parametrize(
    ("operation", "statement"),
    [
        ("UPDATE", f"UPDATE {TABLE} SET comment = 'rewritten', actor_id = NULL WHERE seq = 2"),
        ("DELETE", f"DELETE FROM {TABLE} WHERE seq = 2"),
        # CASCADE: without it the foreign key from idempotency keys refuses first.
        ("TRUNCATE", f"TRUNCATE {TABLE} CASCADE"),
    ],
    ids=["update", "delete", "truncate"],
)
def test_raw_sql_cannot_change_the_audit_trail(requester, request_type, operation, statement):
    # given a request with a short audit trail
    make_request(requester=requester, request_type=request_type)
    before = _rows()
    assert len(before) == 2

    # when raw SQL tries to rewrite, remove or empty the trail
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    # then the database refuses, naming the append-only rule, and every row is as it was
    assert f"the audit trail is append-only: {operation} on {TABLE} is not allowed" in str(refused.value)
    assert _rows() == before


def _tamper_comment(entry: AuditEntry, comment: str) -> None:
    """What someone with superuser rights could do: switch the trigger off and edit."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        cursor.execute(f"UPDATE {TABLE} SET comment = %s WHERE id = %s", [comment, entry.pk])
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")


def test_audit_verify_names_an_entry_altered_behind_the_triggers_back(requester, request_type, approver):
    # given two requests whose chains are intact and verify OK
    tampered = make_request(requester=requester, request_type=request_type, title="Tampered")
    request_act(request_id=tampered.pk, action="approve", actor=approver, comment="fine by me")
    untouched = make_request(requester=requester, request_type=request_type, title="Untouched")
    request_act(request_id=untouched.pk, action="approve", actor=approver, comment="fine by me")
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "OK: 6 entries in 2 chains verified" in out.getvalue()

    # when the middle entry (#2, 'submit') of one chain is rewritten with the trigger off
    middle = AuditEntry.objects.for_instance(tampered).get(seq=2)
    _tamper_comment(middle, "submitted by someone else")

    # then the trigger is back on for everyone else
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as c:
        c.execute(f"DELETE FROM {TABLE} WHERE id = %s", [middle.pk])
    # and audit_verify fails naming that entry's id, its instance and its place in the chain
    err = StringIO()
    with pytest.raises(CommandError) as broken:
        call_command("audit_verify", stdout=StringIO(), stderr=err)
    message = str(broken.value)
    assert f"entry {middle.pk} (approvals.approvalrequest:{tampered.pk} #2)" in message
    assert "contents do not match the entry's hash (entry was altered)" in message
    # and only that chain is reported: the untouched one still verifies
    report = audit_verify()
    assert [(b.entry_id, b.ref, b.seq) for b in report.breaks] == [
        (middle.pk, f"approvals.approvalrequest:{tampered.pk}", 2)
    ]
    assert err.getvalue().count("BROKEN") == 1
