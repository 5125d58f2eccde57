"""How many SQL statements each action costs, after-commit push included (issue: the core).

Counted as a web request would run them: a freshly loaded actor, the request type as the
new-request page loads it, a real transaction (not a test's savepoint), and the push
after commit. The bounds are the targets; the exact figures are printed by
bench/transitions and bench/peer.
"""

from __future__ import annotations

import copy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act, request_create
from workflows.models import OutboxEvent, WebhookEventType
from workflows.webhooks.events import FANOUT_TASK
from workflows.webhooks.services import webhook_subscription_create

pytestmark = pytest.mark.django_db(transaction=True)

# On PostgreSQL a step's writes go as two statements (workflows.sql.Writes: handoffs and
# side rows; then the audit entry, the instance and the outbox events); elsewhere one each.
ON_POSTGRESQL = connection.vendor == "postgresql"
CREATE_AND_SUBMIT_MAX = 9 if ON_POSTGRESQL else 11
# Webhook subscriptions cost a step nothing: it writes one fan-out task event among its
# other outbox events (one INSERT for all), and the task reads the subscriptions later.
APPROVE_MAX = 7 if ON_POSTGRESQL else 10


HOOK = "https://hooks.example.com/baton"
TRANSACTION_CONTROL = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT"}


def _statements(captured: CaptureQueriesContext) -> list[str]:
    # SQLite's BEGIN and COMMIT go through a cursor and are captured; PostgreSQL's are not.
    # Neither is work the application asked for, so neither counts.
    return [q["sql"] for q in captured.captured_queries if q["sql"].upper() not in TRANSACTION_CONTROL]


@pytest.mark.parametrize("subscribed", [False, True], ids=["no-webhooks", "webhooks"])
def test_create_and_submit_then_approve_stay_within_their_statement_budgets(
    requester, approver, request_type, memory_broker, subscribed: bool
):
    # given (or not) both people subscribed to every webhook event
    if subscribed:
        for owner in (requester, approver):
            webhook_subscription_create(
                owner=owner, target_url=HOOK, event_types=list(WebhookEventType.values)
            )
    # and the actors as a web request loads them, and the type as the new-request page does
    author = User.objects.get(pk=requester.pk)
    deciding = User.objects.get(pk=approver.pk)
    kind = RequestType.objects.select_related("current_policy").get(pk=request_type.pk)
    # (a first request warms per-process caches: content types, the parsed policy)
    warm = request_create(requester=copy.copy(author), request_type=kind, title="warm-up")
    request_act(request_id=warm.pk, action="approve", actor=copy.copy(deciding))

    # when a request is created and submitted, then approved
    with CaptureQueriesContext(connection) as created:
        request = request_create(requester=copy.copy(author), request_type=kind, title="Buy a desk")
    with CaptureQueriesContext(connection) as approved:
        request_act(request_id=request.pk, action="approve", actor=copy.copy(deciding))

    # then each stayed within its budget, the push after commit included
    create_sql, approve_sql = _statements(created), _statements(approved)
    print(f"\ncreate + submit: {len(create_sql)} statements, approve: {len(approve_sql)}")
    assert len(create_sql) <= CREATE_AND_SUBMIT_MAX, "\n".join(create_sql)
    assert len(approve_sql) <= APPROVE_MAX, "\n".join(approve_sql)
    assert any(s.startswith("UPDATE") and "workflows_outboxevent" in s for s in approve_sql[-2:]), approve_sql
    # and everything happened: approved, every event delivered by the push
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"
    assert not OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).exists()
    # and each step handed its webhooks to one fan-out task, which is where subscribers count
    fanouts = OutboxEvent.objects.filter(destination=FANOUT_TASK, payload__kwargs__instance_id=request.pk)
    assert fanouts.count() == 2
