"""Two expiry scans at once on PostgreSQL: every due request expires (or escalates) once.

Each scan takes its batch with SELECT ... FOR UPDATE SKIP LOCKED, and the expiry commits
with the batch, so the other scan either skips the row or no longer finds it due.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from approvals.actions import Action
from approvals.expiry import ExpiryTerms
from approvals.models import ApprovalRequest, OnExpiry, State
from approvals.services import request_create
from approvals.timers import requests_expire
from tests.factories import GroupFactory, RequestTypeFactory, make_approver, make_requester
from tests.integration.conftest import run_concurrently
from workflows.audit import audit_verify
from workflows.models import AuditEntry

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ITEMS = 30


def _due_requests(*, on_expiry: str) -> tuple[list[int], datetime]:
    group = GroupFactory.create()
    approver = make_approver(group)
    escalate_to = make_approver(group) if on_expiry == OnExpiry.ESCALATE else None
    kind = RequestTypeFactory.create(
        approver_group=group,
        policy={"stages": [{"name": "review", "approvers": {"users": [approver.username]}}]},
    )
    requester = make_requester()
    when = timezone.now() + timedelta(hours=1)
    terms = ExpiryTerms(expires_at=when, on_expiry=on_expiry, escalate_user=escalate_to)
    ids = [
        request_create(requester=requester, request_type=kind, title=f"item {i}", expiry=terms).pk
        for i in range(ITEMS)
    ]
    return ids, when + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("on_expiry", "outcome"), [(OnExpiry.EXPIRE, "expired"), (OnExpiry.ESCALATE, "escalated")]
)
def test_two_expiry_scans_at_once_act_on_each_request_once(on_expiry: str, outcome: str) -> None:
    # given 30 requests past their expiry
    ids, later = _due_requests(on_expiry=on_expiry)
    # when two scans run at the same moment, in small batches
    outcomes = run_concurrently(2, lambda i: requests_expire(now=later, batch_size=4))
    # then neither failed, and together they acted on each request exactly once
    assert [o.error for o in outcomes] == [None, None]
    fired: Counter[str] = Counter()
    for result in outcomes:
        fired.update(result.value.fired)
    assert fired[outcome] == ITEMS
    action = Action.EXPIRE if on_expiry == OnExpiry.EXPIRE else Action.REASSIGN
    touched = AuditEntry.objects.filter(action=action, actor__isnull=True).values_list("object_id", flat=True)
    assert sorted(int(i) for i in touched) == sorted(ids)
    states = set(ApprovalRequest.objects.filter(pk__in=ids).values_list("state", flat=True))
    assert states == ({State.EXPIRED} if on_expiry == OnExpiry.EXPIRE else {State.IN_REVIEW})
    assert audit_verify().ok
