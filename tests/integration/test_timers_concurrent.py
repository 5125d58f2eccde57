"""Two timer scans at once on PostgreSQL: every reminder and escalation happens once.

Each scan takes its batch with SELECT ... FOR UPDATE SKIP LOCKED and advances the timers
in the same transaction as what it does, so the second scan finds nothing left to do.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from approvals.actions import Action
from approvals.models import ApprovalRequest, Notification, State
from approvals.timers import handoff_timers_scan
from tests.factories import (
    GroupFactory,
    RequestTypeFactory,
    UserFactory,
    make_approver,
    make_request,
    make_requester,
)
from tests.integration.conftest import run_concurrently
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ITEMS = 30


def _requests(*, on_overdue: str, remind_at: list[float] | None = None) -> list[int]:
    group = GroupFactory.create()
    boss = UserFactory.create()
    approver = make_approver(group, manager=boss)
    stage: dict[str, Any] = {
        "name": "review",
        "approvers": {"users": [approver.username]},
        "sla": "1h",
        "on_overdue": on_overdue,
    }
    if remind_at:
        stage["remind_at"] = remind_at
    kind = RequestTypeFactory.create(approver_group=group, policy={"stages": [stage]})
    requester = make_requester()
    return [make_request(requester=requester, request_type=kind, title=f"item {i}").pk for i in range(ITEMS)]


def test_two_scans_at_once_reject_each_overdue_request_once():
    # given 30 requests whose stage is rejected when overdue
    ids = _requests(on_overdue="reject")
    later = Handoff.objects.order_by("-due_at").first().due_at + timedelta(minutes=1)
    # when two scans run at the same moment, in small batches
    outcomes = run_concurrently(2, lambda i: handoff_timers_scan(now=later, batch_size=4))
    # then neither failed, together they rejected each request exactly once
    assert [o.error for o in outcomes] == [None, None]
    fired: Counter[str] = Counter()
    for outcome in outcomes:
        fired.update(outcome.value.fired)
    assert fired["escalated:reject"] == ITEMS
    timeouts = AuditEntry.objects.filter(action=Action.TIME_OUT).values_list("object_id", flat=True)
    assert sorted(int(i) for i in timeouts) == sorted(ids)
    assert not Handoff.objects.filter(object_id__in=[str(i) for i in ids], closed_at__isnull=True).exists()
    assert set(ApprovalRequest.objects.filter(pk__in=ids).values_list("state", flat=True)) == {State.REJECTED}
    assert audit_verify().ok


def test_two_scans_at_once_remind_and_tell_the_manager_once():
    ids = _requests(on_overdue="notify_manager", remind_at=[0.5])
    first = Handoff.objects.order_by("-opened_at").first()
    halfway = first.opened_at + timedelta(minutes=30)
    due = Handoff.objects.order_by("-due_at").first().due_at
    for moment in (halfway, due):
        outcomes = run_concurrently(2, lambda i, moment=moment: handoff_timers_scan(now=moment, batch_size=3))
        assert [o.error for o in outcomes] == [None, None]
    reminders = Notification.objects.filter(kind=Notification.Kind.REMINDER, request_id__in=ids)
    escalations = Notification.objects.filter(kind=Notification.Kind.ESCALATION, request_id__in=ids)
    assert (reminders.count(), escalations.count()) == (ITEMS, ITEMS)
    assert len(set(escalations.values_list("request_id", flat=True))) == ITEMS
