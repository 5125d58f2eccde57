"""The expiry scan beat runs: requests past `expires_at` expire or escalate once, with a
controlled clock; a request decided before the timer fires is left alone."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from approvals.actions import Action
from approvals.expiry import ExpiryTerms, request_expire
from approvals.models import ApprovalRequest, Notification, OnExpiry, State
from approvals.notifications import notify_transition
from approvals.services import request_act, request_create
from approvals.timers import TIMER_SCANS, requests_expire, timers_scan
from tests.factories import GroupFactory, RequestTypeFactory, make_approver, make_requester
from tests.mail_support import mail_tasks_run
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db


class Desk:
    """One approver's request type and a request of it with the given expiry terms."""

    def __init__(self, *, hours: float = 2, **terms: object) -> None:
        self.group = GroupFactory.create()
        self.approver = make_approver(self.group)
        self.type = RequestTypeFactory.create(
            approver_group=self.group,
            policy={"stages": [{"name": "review", "approvers": {"users": [self.approver.username]}}]},
        )
        self.requester = make_requester()
        self.expires_at: datetime = timezone.now() + timedelta(hours=hours)
        self.request = request_create(
            requester=self.requester,
            request_type=self.type,
            title="Buy a desk",
            expiry=ExpiryTerms(expires_at=self.expires_at, **terms),  # type: ignore[arg-type]
        )

    def reload(self) -> ApprovalRequest:
        return ApprovalRequest.objects.get(pk=self.request.pk)


def test_beat_runs_the_expiry_scan() -> None:
    assert requests_expire in TIMER_SCANS


def test_a_request_past_its_expiry_ends_as_expired_by_the_system_once(django_capture_on_commit_callbacks):
    # given a request expiring in two hours
    desk = Desk()
    mail.outbox.clear()
    # when beat scans a second before, just after, and again later
    with django_capture_on_commit_callbacks(execute=True):
        before = timers_scan(now=desk.expires_at - timedelta(seconds=1))
        after = timers_scan(now=desk.expires_at + timedelta(seconds=1))
        again = timers_scan(now=desk.expires_at + timedelta(hours=1))
    # then it expired once, as the system, its handoff closed, and the requester was told
    assert (before.get("expired", 0), after.get("expired"), again.get("expired", 0)) == (0, 1, 0)
    assert desk.reload().state == State.EXPIRED
    entries = AuditEntry.objects.filter(action=Action.EXPIRE)
    assert [(e.actor_id, e.object_id) for e in entries] == [(None, str(desk.request.pk))]
    assert not Handoff.objects.for_instance(desk.request).open().exists()
    # and the requester hears of it through the usual notification of a transition
    entry = entries.get()
    notify_transition(request_id=desk.request.pk, action=entry.action, audit_seq=entry.seq, event_id="x1")
    mail_tasks_run()
    told = Notification.objects.get(request=desk.request, recipient=desk.requester)
    assert (told.kind, told.text) == (Notification.Kind.CLOSED, "expired by Baton; the request is expired")
    assert desk.requester.email in {address for m in mail.outbox for address in m.to}
    assert audit_verify().ok


def test_an_escalation_on_expiry_hands_it_on_once_and_then_it_waits(django_capture_on_commit_callbacks):
    # given a request that escalates to a manager on expiry
    desk = Desk(on_expiry=OnExpiry.ESCALATE, escalate_user=None)
    manager = make_approver(desk.group, username="expiry-manager")
    ApprovalRequest.objects.filter(pk=desk.request.pk).update(expiry_escalate_user=manager)
    # when the scan runs after its expiry, twice
    with django_capture_on_commit_callbacks(execute=True):
        first = requests_expire(now=desk.expires_at + timedelta(minutes=1))
        second = requests_expire(now=desk.expires_at + timedelta(hours=5))
    # then its review went to the manager once, it is still open, the requester heard once
    assert (first.fired["escalated"], second.total) == (1, 0)
    request = desk.reload()
    assert request.state == State.IN_REVIEW
    assert request.expiry_escalated_at == desk.expires_at + timedelta(minutes=1)
    assert Handoff.objects.for_instance(request).open().get().assignee == manager
    assert AuditEntry.objects.filter(action=Action.REASSIGN, actor__isnull=True).count() == 1
    notes = Notification.objects.filter(request=request, kind=Notification.Kind.ESCALATION)
    assert list(notes.values_list("recipient_id", flat=True)) == [desk.requester.pk]
    # and the manager can still decide it
    request_act(request_id=request.pk, actor=manager, action=Action.APPROVE)
    assert desk.reload().state == State.APPROVED


def test_a_request_decided_before_its_expiry_is_left_alone(caplog):
    # given a request approved before it would have expired
    desk = Desk()
    request_act(request_id=desk.request.pk, actor=desk.approver, action=Action.APPROVE)
    # when the scan runs after the expiry
    with caplog.at_level(logging.INFO):
        report = requests_expire(now=desk.expires_at + timedelta(minutes=1))
    # then nothing was due (the decision stands) and no expiry is audited
    assert report.total == 0
    assert desk.reload().state == State.APPROVED
    assert not AuditEntry.objects.filter(action=Action.EXPIRE).exists()


def test_a_timer_that_fires_after_the_decision_does_nothing_and_logs_it(caplog):
    # given a due request found by a scan that is decided before its turn comes
    desk = Desk()
    request_act(request_id=desk.request.pk, actor=desk.approver, action=Action.APPROVE)
    # when its expiry fires anyway
    with caplog.at_level(logging.INFO, logger="approvals.expiry"):
        result = request_expire(request_id=desk.request.pk, now=desk.expires_at + timedelta(minutes=1))
    # then it does nothing and says so
    assert result is None
    assert desk.reload().state == State.APPROVED
    assert "nothing to do" in caplog.text


def test_many_due_requests_are_expired_in_batches() -> None:
    desks = [Desk(hours=1) for _ in range(5)]
    latest = max(d.expires_at for d in desks)
    report = requests_expire(now=latest + timedelta(seconds=1), batch_size=2)
    assert (report.fired["expired"], report.batches) == (5, 3)
    assert {d.reload().state for d in desks} == {State.EXPIRED}
