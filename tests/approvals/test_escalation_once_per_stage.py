"""'Tell the manager' on an all or quorum stage: one notice per stage visit and manager,
however many of the stage's handoffs (one per approver) run out together."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail

from approvals.models import Notification
from approvals.services import request_act
from approvals.timers import handoff_timers_scan
from tests.factories import (
    GroupFactory,
    RequestTypeFactory,
    UserFactory,
    make_approver,
    make_request,
    make_requester,
)
from tests.mail_support import mail_tasks_run
from workflows.models import Handoff
from workflows.services import handoff_reassign

pytestmark = pytest.mark.django_db


class Stage:
    """An 'all' stage of three approvers: two with manager `boss`, one with `other_boss`."""

    def __init__(self, *, rule: dict[str, Any] | None = None) -> None:
        group = GroupFactory.create()
        self.boss = UserFactory.create(username="boss")
        self.other_boss = UserFactory.create(username="other-boss")
        self.approvers = [
            make_approver(group, username="ann", first_name="Ann", last_name="", manager=self.boss),
            make_approver(group, username="ben", first_name="Ben", last_name="", manager=self.boss),
            make_approver(group, username="cat", first_name="Cat", last_name="", manager=self.other_boss),
        ]
        stage = {
            "name": "review",
            "approvers": {"users": [a.username for a in self.approvers]},
            "sla": "1h",
            **(rule or {"rule": "all"}),
        }
        kind = RequestTypeFactory.create(approver_group=group, policy={"stages": [stage]})
        self.request = make_request(requester=make_requester(), request_type=kind)
        self.handoffs = list(Handoff.objects.for_instance(self.request).open().order_by("pk"))
        due = self.handoffs[0].due_at
        assert due is not None
        self.due = due

    def told(self) -> list[tuple[str, str]]:
        return sorted(
            Notification.objects.filter(request=self.request, kind=Notification.Kind.ESCALATION).values_list(
                "recipient__username", "text"
            )
        )


@pytest.mark.parametrize("rule", [{"rule": "all"}, {"rule": "quorum", "quorum": 2}])
def test_each_manager_hears_once_of_a_stage_whose_handoffs_all_ran_out(
    rule: dict[str, Any], django_capture_on_commit_callbacks
) -> None:
    # given a stage of three approvers, all overdue at once (two share a manager)
    stage = Stage(rule=rule)
    assert len(stage.handoffs) == 3
    assert {h.due_at for h in stage.handoffs} == {stage.due}
    # when the scan fires their three timers, and a later scan runs too
    with django_capture_on_commit_callbacks(execute=True):
        report = handoff_timers_scan(now=stage.due + timedelta(seconds=1))
        later = handoff_timers_scan(now=stage.due + timedelta(hours=5))
    # then every handoff escalated, but each manager was told once, of all its holders
    assert report.fired == {"escalated:notify_manager": 3}
    assert later.total == 0
    held = "overdue at stage review (SLA 1h): held by Ann, Ben and Cat"
    assert stage.told() == [("boss", held), ("other-boss", held)]
    assert (
        Handoff.objects.filter(pk__in=[h.pk for h in stage.handoffs], escalated_at__isnull=True).count() == 0
    )
    # and one mail each
    mail_tasks_run()
    assert sorted(address for m in mail.outbox for address in m.to if "boss" in address) == [
        stage.boss.email,
        stage.other_boss.email,
    ]


def test_a_handoff_reassigned_before_it_ran_out_belongs_to_the_same_visit() -> None:
    # given the stage, and ann's handoff passed on to ben's colleague dan (same boss)
    stage = Stage()
    dan = make_approver(GroupFactory.create(), username="dan", manager=stage.boss)
    handoff_reassign(handoff_id=stage.handoffs[0].pk, actor=stage.approvers[0], to_user=dan, reason="away")
    # when the scan fires at the due time
    handoff_timers_scan(now=stage.due + timedelta(seconds=1))
    # then the boss heard once, the other boss once
    assert [who for who, _ in stage.told()] == ["boss", "other-boss"]


def test_a_later_visit_of_the_stage_is_told_again() -> None:
    # given a stage told of once, sent back for changes and resubmitted
    stage = Stage()
    handoff_timers_scan(now=stage.due + timedelta(seconds=1))
    request_act(
        request_id=stage.request.pk, action="request_changes", actor=stage.approvers[0], comment="more"
    )
    request_act(request_id=stage.request.pk, action="resubmit", actor=stage.request.requester)
    visit = list(Handoff.objects.for_instance(stage.request).open().order_by("pk"))
    assert len(visit) == 3
    # when the new visit runs out too
    again = visit[0].due_at
    assert again is not None
    handoff_timers_scan(now=again + timedelta(seconds=1))
    # then each manager heard once per visit
    assert [who for who, _ in stage.told()] == ["boss", "boss", "other-boss", "other-boss"]
