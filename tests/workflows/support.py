"""Helpers of the engine tests: what the database holds, raw tampering, listening on channels,
reading what reached the Celery broker."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from approvals.models import ApprovalRequest
from config.celery import app as celery_app
from tests import listening
from tests.testapp.models import Ticket
from workflows.models import AuditEntry, Handoff, IdempotencyKey, OutboxEvent

AUDIT_TABLE = AuditEntry._meta.db_table


def db_snapshot() -> dict[str, list[Any]]:
    """Every row a transition or a handoff change could write, in full."""
    return {
        "requests": list(ApprovalRequest.objects.order_by("pk").values()),
        "tickets": list(Ticket.objects.order_by("pk").values()),
        "handoffs": list(Handoff.objects.order_by("pk").values()),
        "audit": list(AuditEntry.objects.order_by("pk").values()),
        "outbox": list(OutboxEvent.objects.order_by("created_at", "pk").values()),
        "idempotency_keys": list(IdempotencyKey.objects.order_by("pk").values()),
    }


def audit_sql(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
    """Run raw SQL on the audit table the way a database superuser could.

    On PostgreSQL the append-only trigger is switched off around the statement (and the
    test's own transaction rolls it all back); SQLite has no trigger.
    """
    on_postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if on_postgres:
            # ALTER TABLE refuses while deferred foreign-key checks are pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if on_postgres:
            cursor.execute(f"ALTER TABLE {AUDIT_TABLE} ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def audit_column_set(entry_id: int, column: str, value: Any) -> None:
    """Overwrite one column of one audit entry behind the ORM's back."""
    placeholder = "%s"
    if column == "created_at":
        value = connection.ops.adapt_datetimefield_value(value)
    elif column == "data":
        value = json.dumps(value)
        if connection.vendor == "postgresql":
            placeholder = "%s::jsonb"
    audit_sql(f"UPDATE {AUDIT_TABLE} SET {column} = {placeholder} WHERE id = %s", [value, entry_id])


def audit_entry_remove(entry_id: int) -> None:
    audit_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [entry_id])


# --- the channel layer -------------------------------------------------------------------

channel_listen = listening.channel_listen
channel_receive = listening.channel_receive


# --- the Celery broker -------------------------------------------------------------------


def broker_use(url: str, transport_options: dict[str, Any]) -> None:
    """Point the Celery app at another broker.

    The app caches its connection pool; kombu keeps one pool per broker address, so the
    old one is left open for when the app points back at it.
    """
    celery_app.conf.update(broker_url=url, broker_transport_options=transport_options)
    # Celery has no public way to drop the cached pools (close() also deregisters the app).
    setattr(celery_app, "_pool", None)  # noqa: B010
    setattr(celery_app.amqp, "_producer_pool", None)  # noqa: B010


def broker_messages() -> list[tuple[str, str, dict[str, Any]]]:
    """Take every task message waiting in the default queue: (task name, task id, kwargs)."""
    taken: list[tuple[str, str, dict[str, Any]]] = []
    with celery_app.connection_for_read() as conn:
        queue = conn.SimpleQueue(celery_app.conf.task_default_queue)
        try:
            while True:
                try:
                    message = queue.get_nowait()
                except queue.Empty:
                    return taken
                taken.append((message.headers["task"], message.headers["id"], message.payload[1]))
                message.ack()
        finally:
            queue.close()


# --- what someone with database access could do past the triggers ----------------------------


def chain_rewrite(instance: Any, *, seq: int, comment: str) -> list[int]:
    """Rewrite one chain consistently: change entry `seq`'s comment, recompute the hash of
    it and of every later entry (each linking to the new one before it) and the head on the
    instance row, so that the chain alone verifies. Returns the ids rewritten."""
    from workflows.audit import entry_rehash  # noqa: PLC0415

    entries = list(AuditEntry.objects.for_instance(instance).order_by("seq"))
    ref = instance.workflow_ref()
    prev = entries[seq - 2].hash if seq > 1 else "0" * 64
    rewritten = []
    for entry in entries[seq - 1 :]:
        if entry.seq == seq:
            entry.comment = comment
        entry.prev_hash = prev
        entry.hash = entry_rehash(entry, ref=ref)
        audit_sql(
            f"UPDATE {AUDIT_TABLE} SET comment = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [entry.comment, entry.prev_hash, entry.hash, entry.pk],
        )
        prev = entry.hash
        rewritten.append(entry.pk)
    type(instance).objects.filter(pk=instance.pk).update(audit_head=prev)
    return rewritten


def last_entry_remove_and_rehead(instance: Any) -> None:
    """Remove a chain's last entry and set the instance's head back to the one before, so
    that the chain alone verifies."""
    entries = list(AuditEntry.objects.for_instance(instance).order_by("seq"))
    audit_entry_remove(entries[-1].pk)
    type(instance).objects.filter(pk=instance.pk).update(
        audit_seq=entries[-2].seq, audit_head=entries[-2].hash
    )


def request_remove_with_chain(request: ApprovalRequest) -> None:
    """Remove a request and everything that names it, its whole audit chain included."""
    from approvals.models import Decision, Notification, RequestRevision  # noqa: PLC0415

    entries = AuditEntry.objects.for_instance(request)
    IdempotencyKey.objects.filter(audit_entry__in=entries).delete()
    Notification.objects.filter(request=request).delete()
    Decision.objects.filter(request=request).delete()
    RequestRevision.objects.filter(request=request).delete()
    Handoff.objects.for_instance(request).update(replaced_by=None)
    Handoff.objects.for_instance(request).delete()
    content_type_id = entries.values_list("content_type_id", flat=True).first()
    audit_sql(
        f"DELETE FROM {AUDIT_TABLE} WHERE content_type_id = %s AND object_id = %s",
        [content_type_id, str(request.pk)],
    )
    ApprovalRequest.objects.filter(pk=request.pk).delete()
