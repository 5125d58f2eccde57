"""The timers scan: reminders once each, the stage's escalation once, with a controlled clock."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Team, TeamMembership
from approvals.actions import Action
from approvals.models import ApprovalRequest, Notification, State
from approvals.services import request_act
from approvals.timers import handoff_timer_fire, handoff_timers_scan, timers_scan
from approvals.timers.escalation import stage_visit_key
from tests.factories import (
    GroupFactory,
    RequestTypeFactory,
    UserFactory,
    make_approver,
    make_request,
    make_requester,
)
from tests.mail_support import mail_tasks_run
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db


class Desk:
    """A request type whose 'review' stage is held by one approver (with a manager),
    the stage's timers as given; and a request of it, just submitted."""

    def __init__(self, *, stages: list[dict[str, Any]] | None = None, **review: Any) -> None:
        self.group = GroupFactory.create()
        self.boss = UserFactory.create(username=f"boss-{self.group.name}")
        self.approver = make_approver(self.group, manager=self.boss)
        first = {"name": "review", "approvers": {"users": [self.approver.username]}, "sla": "10h", **review}
        self.type = RequestTypeFactory.create(
            approver_group=self.group, policy={"stages": [first, *(stages or [])]}
        )
        self.requester = make_requester()
        self.request = make_request(requester=self.requester, request_type=self.type)
        self.handoff = Handoff.objects.for_instance(self.request).open().get()
        self.opened = self.handoff.opened_at

    def at(self, hours: float) -> Any:
        return self.opened + timedelta(hours=hours)

    def notes(self, kind: str) -> list[tuple[str, str]]:
        return list(
            Notification.objects.filter(request=self.request, kind=kind)
            .order_by("id")
            .values_list("recipient__username", "event_id")
        )

    def reload(self) -> ApprovalRequest:
        return ApprovalRequest.objects.get(pk=self.request.pk)


def test_reminders_go_out_once_each_at_their_fractions_of_the_sla(django_capture_on_commit_callbacks):
    # given a 10h SLA with reminders at half and at nine tenths
    desk = Desk(remind_at=[0.5, 0.9])
    mail.outbox.clear()
    # when the scan runs before the first, at it, again at it, and at the second
    with django_capture_on_commit_callbacks(execute=True):
        before = handoff_timers_scan(now=desk.at(4.9))
        first = handoff_timers_scan(now=desk.at(5))
        again = handoff_timers_scan(now=desk.at(5.5))
        second = handoff_timers_scan(now=desk.at(9))
    mail_tasks_run()
    # then each reminder went out once, to the holder, with a mail
    assert (before.total, first.fired["reminded"], again.total, second.fired["reminded"]) == (0, 1, 0, 1)
    assert desk.notes(Notification.Kind.REMINDER) == [
        (desk.approver.username, f"timer:{desk.handoff.pk}:remind:1"),
        (desk.approver.username, f"timer:{desk.handoff.pk}:remind:2"),
    ]
    assert [m.to for m in mail.outbox] == [[desk.approver.email], [desk.approver.email]]
    assert Handoff.objects.get(pk=desk.handoff.pk).next_timer_at == desk.handoff.due_at


def test_reminders_missed_while_no_scan_ran_are_one_reminder():
    desk = Desk(remind_at=[0.5, 0.9])
    report = handoff_timers_scan(now=desk.at(9.5))
    assert report.fired == {"reminded": 1}
    assert Handoff.objects.get(pk=desk.handoff.pk).reminders_sent == 2


def test_at_the_due_time_the_holders_manager_hears_of_it_once():
    # given a stage with no escalation target: the overdue action is a word to the manager
    desk = Desk()
    team = Team.objects.create(name="Ops", slug="ops")
    team_manager = UserFactory.create()
    TeamMembership.objects.create(team=team, user=desk.approver)
    TeamMembership.objects.create(team=team, user=team_manager, is_manager=True)
    # when the scan runs at the due time, and again later
    first = handoff_timers_scan(now=desk.at(10))
    later = handoff_timers_scan(now=desk.at(30))
    # then the line manager and the team's manager were told once; the item stays put
    assert first.fired == {"escalated:notify_manager": 1}
    assert later.total == 0
    key = f"stage:{stage_visit_key(request=desk.request, handoff=desk.handoff)}:escalate"
    assert sorted(desk.notes(Notification.Kind.ESCALATION)) == sorted(
        [(desk.boss.username, key), (team_manager.username, key)]
    )
    handoff = Handoff.objects.get(pk=desk.handoff.pk)
    assert (handoff.closed_at, handoff.escalated_at, handoff.next_timer_at) == (None, desk.at(10), None)


def test_an_overdue_handoff_is_reassigned_to_the_escalation_target_by_the_system():
    # given a stage that escalates to the leads group
    group = GroupFactory.create(name="leads")
    lead = make_approver(group)
    desk2 = Desk(escalate_to={"group": group.name})
    # when the scan runs after the due time
    report = handoff_timers_scan(now=desk2.at(10.5))
    assert report.fired["escalated:reassign"] == 1
    old = Handoff.objects.get(pk=desk2.handoff.pk)
    new = Handoff.objects.for_instance(desk2.request).open().get()
    # the old handoff was handed on, the new one belongs to the group, same due time,
    # already escalated (it never escalates again)
    assert (old.close_reason, old.replaced_by_id) == (Handoff.CloseReason.REASSIGNED, new.pk)
    assert (new.candidate_group_id, new.due_at, new.escalated_at, new.next_timer_at) == (
        group.pk,
        old.due_at,
        desk2.at(10.5),
        None,
    )
    entry = AuditEntry.objects.for_instance(desk2.request).order_by("-seq").first()
    assert (entry.action, entry.actor_id, entry.comment) == (
        "reassign",
        None,
        "Stage review ran out of time (SLA 10h)",
    )
    assert audit_verify().ok
    # and the lead may now decide it
    assert (
        request_act(request_id=desk2.request.pk, action="approve", actor=lead).instance.state
        == State.APPROVED
    )
    assert handoff_timers_scan(now=desk2.at(50)).total == 0


def test_a_stage_whose_policy_says_reject_is_rejected_by_the_system_and_audited():
    desk = Desk(on_overdue="reject")
    report = handoff_timers_scan(now=desk.at(11))
    request = desk.reload()
    assert report.fired == {"escalated:reject": 1}
    assert request.state == State.REJECTED
    entry = AuditEntry.objects.for_instance(request).order_by("-seq").first()
    assert (entry.action, entry.actor_id, entry.target) == (Action.TIME_OUT, None, State.REJECTED)
    assert entry.data["system"] is True
    assert entry.data["decision"] == {
        "stage": "review",
        "outcome": "reject",
        "revision": 1,
        "slot": "",
        "stage_outcome": "failed",
    }
    assert "rejected automatically" in entry.comment
    assert not request.decisions.exists()  # nobody's decision: the system's, recorded as such
    assert audit_verify().ok


def test_an_automatic_approval_moves_the_request_on_to_its_next_stage():
    desk = Desk(on_overdue="approve", stages=[{"name": "finance", "approvers": {"groups": ["finance"]}}])
    finance = GroupFactory.create(name="finance")
    make_approver(finance)
    report = handoff_timers_scan(now=desk.at(10))
    request = desk.reload()
    assert report.fired == {"escalated:approve": 1}
    assert (request.state, request.current_stage.name) == (State.IN_REVIEW, "finance")
    (now_open,) = Handoff.objects.for_instance(request).open()
    assert now_open.candidate_group_id == finance.pk


def test_a_timer_that_fires_after_the_decision_does_nothing_and_says_so(caplog):
    desk = Desk(on_overdue="reject")
    request_act(request_id=desk.request.pk, action="approve", actor=desk.approver)
    with caplog.at_level(logging.INFO, logger="approvals.timers"):
        outcome = handoff_timer_fire(handoff_id=desk.handoff.pk, now=desk.at(11))
    assert outcome == "decided"
    assert desk.reload().state == State.APPROVED
    assert (
        f"timer of handoff {desk.handoff.pk} fired after {desk.request.reference} was decided" in caplog.text
    )
    assert handoff_timers_scan(now=desk.at(11)).total == 0


def test_a_timer_fired_by_id_twice_escalates_once():
    desk = Desk(on_overdue="reject")
    assert handoff_timer_fire(handoff_id=desk.handoff.pk, now=desk.at(10)) == "escalated:reject"
    assert handoff_timer_fire(handoff_id=desk.handoff.pk, now=desk.at(10)) == "decided"
    assert AuditEntry.objects.for_instance(desk.request).filter(action=Action.TIME_OUT).count() == 1


def test_a_scan_works_through_many_due_handoffs_in_batches():
    desks = [Desk(remind_at=[0.5]) for _ in range(5)]
    latest = max(d.at(5) for d in desks)
    report = handoff_timers_scan(now=latest, batch_size=2)
    assert (report.fired["reminded"], report.batches) == (5, 3)


def test_beat_runs_every_registered_scan():
    desk = Desk(remind_at=[0.5])
    assert timers_scan(now=desk.at(6)) == {"reminded": 1}


def test_the_request_page_tells_the_automatic_decision_apart_from_a_persons():
    desk = Desk(on_overdue="reject")
    handoff_timers_scan(now=desk.at(11))
    client = Client()
    client.force_login(desk.requester)
    html = client.get(f"/requests/{desk.request.pk}/").content.decode()
    assert "decided automatically when the stage ran out of time" in html
    assert "rejected automatically: overdue" in html
    assert "rejected by" not in html
